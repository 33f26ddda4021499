package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// validateFile writes text (a [node] section naming an identity that
// exists is prepended) and runs `tarzan validate` on it.
func validateFile(t *testing.T, dir, text string) (string, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "identity.key"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.toml")
	if err := os.WriteFile(path, []byte("[node]\nidentity = \"identity.key\"\n\n"+text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tarzanBin, "validate", "-c", path).CombinedOutput()
	return string(out), err
}

// Issue 14: a wrong plugin name, an unknown option, a wrong type in an
// option, a missing file an option names, and a node.toml name that is
// not the external plugin's Name() each fail validate with file, line
// and key.
func TestValidatePluginFileLineKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "node.toml")
	script := "#!/bin/sh\nexec " + tarzanBin + " plugin serve transport udp\n"
	plugin := filepath.Join(dir, "udp-plugin.sh")
	if err := os.WriteFile(plugin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(script))
	pin := hex.EncodeToString(sum[:])
	for _, c := range []struct{ text, want string }{
		{"[cover]\nname = \"constent\"\n", p + `:5: cover.name: "constent" is not a shipped cover plugin`},
		{"[transport]\nname = \"udp\"\n[transport.options]\nbach = \"8\"\n", p + `:7: transport.options.bach: unknown option; udp takes batch, gro, gso, rcvbuf, sndbuf`},
		{"[transport]\nname = \"udp\"\n[transport.options]\nbatch = \"eight\"\n", p + `:7: transport.options.batch: "eight" is not an integer`},
		{"[discovery]\nname = \"static\"\noptions.file = \"no-such-peers.txt\"\n", p + `:6: discovery.options.file: file no-such-peers.txt: no such file or directory`},
		{fmt.Sprintf("[transport]\nname = \"xor\"\npath = %q\nsha256 = %q\n", plugin, pin), p + `:5: transport.name: "xor", but the plugin at ` + plugin + ` calls itself "udp"`},
		{fmt.Sprintf("[transport]\nname = \"udp\"\npath = %q\nsha256 = %q\noptions.gso = \"maybe\"\n", plugin, pin), p + `:8: transport.options.gso: "maybe" is not one of on, off`},
	} {
		out, err := validateFile(t, dir, c.text)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s\nvalidate (%v):\n%s\nwant a line with %q", c.text, err, out, c.want)
		}
	}
	if out, err := validateFile(t, dir, fmt.Sprintf("[transport]\nname = \"udp\"\npath = %q\nsha256 = %q\noptions.gso = \"off\"\n", plugin, pin)); err != nil || !strings.Contains(out, ": ok (") {
		t.Errorf("a good external plugin: %v\n%s", err, out)
	}
}

// `tarzan plugin list` names each shipped plugin's options; -v describes them.
func TestPluginListOptions(t *testing.T) {
	out, err := exec.Command(tarzanBin, "plugin", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "batch,gro,gso,rcvbuf,sndbuf") {
		t.Errorf("plugin list: %v\n%s", err, out)
	}
	out, err = exec.Command(tarzanBin, "plugin", "list", "-v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "loop_rate") || !strings.Contains(string(out), "mean loops per second") {
		t.Errorf("plugin list -v: %v\n%s", err, out)
	}
}

// The node checks its shipped plugins' options at start as validate does,
// and refuses a bad one with file, line and key before starting anything.
func TestNodeRefusesBadOptionWithLine(t *testing.T) {
	dir := t.TempDir()
	if _, err := validateFile(t, dir, "[cover]\nname = \"constant\"\noptions.rat = \"5\"\n"); err == nil {
		t.Fatal("validate accepted an unknown option")
	}
	p := filepath.Join(dir, "node.toml")
	out, err := exec.Command(tarzanBin, "node", "-c", p).CombinedOutput()
	if want := p + `:6: cover.options.rat: unknown option; constant takes interval, rate`; err == nil || !strings.Contains(string(out), want) {
		t.Errorf("node (%v):\n%s\nwant %q", err, out, want)
	}
}
