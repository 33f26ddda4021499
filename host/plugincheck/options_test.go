package plugincheck

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// TestHelperPlugin is not a test: run by a plugin script (see
// writePlugin) with pluginkit.DescribeEnv set, it is the shipped udp
// transport answering a describe request.
func TestHelperPlugin(t *testing.T) {
	if os.Getenv(pluginkit.DescribeEnv) != "1" {
		t.Skip("helper process only")
	}
	if err := Serve("transport", "udp"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(1) // Serve answers the request and exits 0
}

// writePlugin writes an executable script into dir that runs body and
// records each run in dir/runs; it returns the script's path and pin.
func writePlugin(t *testing.T, dir, body string) (path, pin string) {
	t.Helper()
	path = filepath.Join(dir, "plugin.sh")
	script := "#!/bin/sh\necho run >> " + filepath.Join(dir, "runs") + "\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	return path, hex.EncodeToString(sum[:])
}

// udpPlugin is a script that is the shipped udp transport, as an
// external plugin.
func udpPlugin(t *testing.T, dir string) (path, pin string) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return writePlugin(t, dir, "exec "+self+" -test.run=^TestHelperPlugin$")
}

// check writes text as dir/node.toml, loads it and runs validate's plugin
// check; the errors come back one per line.
func check(t *testing.T, dir, text string) ([]string, []string) {
	t.Helper()
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	notes, err := Check(cfg, true)
	if err == nil {
		return nil, notes
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("error does not wrap config.ErrInvalid: %v", err)
	}
	return strings.Split(err.Error(), "\n"), notes
}

func wantErrors(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: %q, want it to begin %q", i+1, got[i], want[i])
		}
	}
}

// Shipped plugins: a wrong name, an unknown option, a value of the wrong
// type, one out of range and a missing file each name file, line and key.
func TestCheckShipped(t *testing.T) {
	dir := t.TempDir()
	toml := `[transport]
name = "udpp"

[discovery]
name = "static"
[discovery.options]
intervall = "5s"
file = "/nonexistent/peers"

[cover]
name = "constant"
options.rate = "fast"

[adapter]
name = "socks"
[adapter.options]
mtu = "99"
"allow remote" = "yes"
`
	errs, notes := check(t, dir, toml)
	p := filepath.Join(dir, "node.toml")
	wantErrors(t, errs,
		p+`:2: transport.name: "udpp" is not a shipped transport plugin (shipped: dtls, kcp, pt, udp)`,
		p+`:7: discovery.options.intervall: unknown option; static takes file, interval, peers, stretch`,
		p+`:8: discovery.options.file: file /nonexistent/peers: no such file or directory`,
		p+`:12: cover.options.rate: "fast" is not a finite number`,
		p+`:17: adapter.options.mtu: 99 is out of range 1280..65535`,
		p+`:18: adapter.options."allow remote": unknown option; socks takes`,
	)
	if len(notes) != 0 {
		t.Errorf("notes: %v", notes)
	}

	errs, _ = check(t, dir, "[transport]\nname = \"udp\"\nextra = [\"kpc 127.0.0.1:0\"]\n")
	wantErrors(t, errs, p+`:3: transport.extra: element 1: "kpc" is not a shipped transport plugin`)

	if errs, notes := check(t, dir, "[cover]\nname = \"poisson\"\n[cover.options]\nrate = \"20\"\nloop_rate = \"0.5\"\n"); errs != nil || notes != nil {
		t.Errorf("a good file: %v %v", errs, notes)
	}
}

// External plugins: the pin is checked before the binary runs; then its
// description gives its kind, name and options.
func TestCheckExternal(t *testing.T) {
	dir := t.TempDir()
	path, pin := udpPlugin(t, dir)
	p := filepath.Join(dir, "node.toml")
	section := func(sec, name, pin, opts string) string {
		return fmt.Sprintf("[%s]\nname = %q\npath = %q\nsha256 = %q\n[%s.options]\n%s", sec, name, path, pin, sec, opts)
	}

	if errs, notes := check(t, dir, section("transport", "udp", pin, "batch = \"8\"\n")); errs != nil || notes != nil {
		t.Fatalf("a good external plugin: %v %v", errs, notes)
	}
	errs, _ := check(t, dir, section("transport", "udp", pin, "batch = \"eight\"\nbogus = \"1\"\n"))
	wantErrors(t, errs,
		p+`:6: transport.options.batch: "eight" is not an integer`,
		p+`:7: transport.options.bogus: unknown option; udp takes batch, gro, gso, rcvbuf, sndbuf`)

	errs, _ = check(t, dir, section("transport", "xor", pin, ""))
	wantErrors(t, errs, p+`:2: transport.name: "xor", but the plugin at `+path+` calls itself "udp"`)

	errs, _ = check(t, dir, section("cover", "udp", pin, ""))
	wantErrors(t, errs, p+`:3: cover.path: `+path+` is a transport plugin, not a cover plugin`)

	os.Remove(filepath.Join(dir, "runs"))
	errs, _ = check(t, dir, section("transport", "udp", strings.Repeat("0", 64), "bogus = \"1\"\n"))
	wantErrors(t, errs, p+`:4: transport.sha256: does not match `+path)
	if _, err := os.Stat(filepath.Join(dir, "runs")); err == nil {
		t.Error("validate ran a plugin whose pin does not match")
	}

	// A binary that predates describe requests: a warning, not an error.
	old, oldPin := writePlugin(t, t.TempDir(), "echo 'This binary is a plugin.' >&2; exit 1")
	path = old
	errs, notes := check(t, dir, section("transport", "udp", oldPin, "bogus = \"1\"\n"))
	if errs != nil || len(notes) != 1 || !strings.Contains(notes[0], ":3: transport.path: options not checked") || !strings.Contains(notes[0], "This binary is a plugin.") {
		t.Errorf("old plugin: errors %v, notes %q", errs, notes)
	}
}

// A describe request answers with JSON a reader can decode, and only
// with the variable set.
func TestDescribe(t *testing.T) {
	path, _ := udpPlugin(t, t.TempDir())
	d, err := Describe(path, DescribeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != pluginkit.DescribeFormat || d.Kind != "transport" || d.Schema == nil || d.Schema.Name != "udp" || d.Schema.Lookup("gso") == nil || len(d.Protocols) == 0 {
		t.Errorf("description %+v", d)
	}
}
