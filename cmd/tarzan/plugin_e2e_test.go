package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
	"github.com/tarzan-net/tarzan/host/plugincheck"
	"github.com/tarzan-net/tarzan/internal/version"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// These tests run node processes whose transport is the external example
// plugin sdk/examples/transport-xor: its own module, built here with its
// own `go build`, named in node.toml by path and pinned by SHA-256.

// example is one of sdk/examples built once, next to the tarzan binary
// (TestMain removes that directory).
type example struct {
	dir, bin  string // under sdk/examples; the executable's name
	once      sync.Once
	path, sum string
	err       error
}

var (
	xorPlugin   = &example{dir: "transport-xor", bin: "tarzan-xor-transport"}
	burstPlugin = &example{dir: "cover-burst", bin: "tarzan-burst-cover"}
)

// build builds the example with its own module's `go build` and returns
// the executable's path and SHA-256.
func (e *example) build(t *testing.T) (path, sum string) {
	t.Helper()
	e.once.Do(func() {
		e.path = filepath.Join(filepath.Dir(tarzanBin), e.bin)
		cmd := exec.Command("go", "build", "-o", e.path, ".")
		cmd.Dir = filepath.Join("..", "..", "sdk", "examples", e.dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			e.err = fmt.Errorf("building %s: %v\n%s", cmd.Dir, err, out)
			return
		}
		e.sum, e.err = plugincheck.FileSHA256(e.path)
	})
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.path, e.sum
}

// buildXOR builds the example transport.
func buildXOR(t *testing.T) (path, sum string) { return xorPlugin.build(t) }

// useXOR edits a node's configuration so that its transport is the
// external xor plugin pinned by sum.
func useXOR(path, sum string) func(int, *config.Config) {
	return func(_ int, cfg *config.Config) {
		cfg.Transport.Name = "xor"
		cfg.Transport.Path = path
		cfg.Transport.SHA256 = sum
		cfg.Transport.InProcess = false
		cfg.Transport.Options = map[string]string{"key": "e2e-not-a-secret"}
	}
}

func TestExternalTransportTunnel(t *testing.T) {
	xor, sum := buildXOR(t)
	nw, ctx := startE2ENet(t, 5, localnet.Loopback{Cover: "none"}, 60*time.Second, useXOR(xor, sum))
	ns := nw.Nodes

	// Every node runs the external binary as its transport child.
	for _, n := range ns {
		st, err := n.Client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pid := transportPID(st)
		if pid == 0 {
			t.Fatalf("node %s reports no out-of-process transport: %+v", st.Short, st.Plugins)
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != xor {
			t.Fatalf("node %s: transport child %d runs %q, want %q", st.Short, pid, exe, xor)
		}
		if ppid := parentOf(pid); ppid != n.PID() {
			t.Fatalf("transport child %d has parent %d, want node %d", pid, ppid, n.PID())
		}
	}

	// A 3-hop tunnel over xor links, every hop answering pings.
	rep, err := ns[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Pings: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hops) != 3 {
		t.Fatalf("tunnel has %d hops, want 3: %+v", len(rep.Hops), rep)
	}
	ours := map[string]bool{}
	for _, n := range ns[1:] {
		ours[n.ID.Short()] = true
	}
	for i, h := range rep.Hops {
		if !ours[h.ID] || h.RTTMS <= 0 {
			t.Errorf("hop %d: %+v is not one of the other nodes answering a ping", i+1, h)
		}
	}

	// plugin list -c sees the pin match and the running child.
	st, err := ns[0].Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tarzanBin, "plugin", "list", "-c", filepath.Join(ns[0].Dir, "node.toml")).CombinedOutput()
	if err != nil {
		t.Fatalf("plugin list -c: %v\n%s", err, out)
	}
	line := lineWith(string(out), "transport")
	for _, want := range []string{"xor", "external", xor, sum, "matches", fmt.Sprintf("pid %d,", transportPID(st))} {
		if !strings.Contains(line, want) {
			t.Errorf("plugin list -c: transport line lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lineWith(string(out), "discovery"), "builtin") {
		t.Errorf("plugin list -c: discovery is not builtin:\n%s", out)
	}
}

func transportPID(st *control.StatusReply) int {
	for _, p := range st.Plugins {
		if p.Kind == "transport" && !p.InProc {
			return p.PID
		}
	}
	return 0
}

// lineWith returns the first line of s that starts with prefix.
func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestExternalTransportWrongChecksum: a node whose transport does not
// match its pin refuses to start and says why.
func TestExternalTransportWrongChecksum(t *testing.T) {
	xor, sum := buildXOR(t)
	wrong := strings.Repeat("ab", 32)
	nw := writeE2ENet(t, 1, localnet.Loopback{Cover: "none"}, useXOR(xor, wrong))
	file := filepath.Join(nw.Nodes[0].Dir, "node.toml")

	// plugin list -c already shows the mismatch without starting anything.
	out, err := exec.Command(tarzanBin, "plugin", "list", "-c", file).CombinedOutput()
	if err != nil {
		t.Fatalf("plugin list -c: %v\n%s", err, out)
	}
	if l := lineWith(string(out), "transport"); !strings.Contains(l, "MISMATCH (have "+sum+")") || !strings.Contains(l, "node not running") {
		t.Errorf("plugin list -c does not report the mismatch:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, tarzanBin, "node", "-c", file).CombinedOutput()
	if err == nil {
		t.Fatalf("node started with a wrongly pinned transport:\n%s", out)
	}
	if ctx.Err() != nil {
		t.Fatalf("node did not exit with a wrongly pinned transport:\n%s", out)
	}
	for _, want := range []string{pluginkit.ErrChecksum.Error(), xor, "want " + wrong, "have " + sum} {
		if !strings.Contains(string(out), want) {
			t.Errorf("node's error lacks %q:\n%s", want, out)
		}
	}
}

func TestPluginVerify(t *testing.T) {
	xor, sum := buildXOR(t)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(tarzanBin, append([]string{"plugin", "verify"}, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{{xor}, {xor, "-sha256", sum}, {"-sha256", strings.ToUpper(sum), xor}} {
		out, err := run(args...)
		if err != nil {
			t.Fatalf("verify %v: %v\n%s", args, err, out)
		}
		for _, want := range []string{"transport (gRPC tarzan.transport.v1.Transport)", sum} {
			if !strings.Contains(out, want) {
				t.Errorf("verify %v: output lacks %q:\n%s", args, want, out)
			}
		}
		if f := strings.Fields(lineWith(out, "protocol")); len(f) < 2 || f[1] != fmt.Sprint(pluginkit.ProtocolVersion) {
			t.Errorf("verify %v: no protocol version %d:\n%s", args, pluginkit.ProtocolVersion, out)
		}
	}

	out, err := run(xor, "-sha256", strings.Repeat("0", 64))
	if exitCode(err) != 1 || !strings.Contains(out, pluginkit.ErrChecksum.Error()) || !strings.Contains(out, "have "+sum) {
		t.Errorf("verify with a wrong pin: %v\n%s", err, out)
	}
	out, err = run("/bin/true")
	if exitCode(err) != 1 || !strings.Contains(out, "/bin/true is not a Tarzan plugin") {
		t.Errorf("verify /bin/true: %v\n%s", err, out)
	}
	out, err = run(filepath.Join(t.TempDir(), "missing"))
	if exitCode(err) != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("verify of a missing file: %v\n%s", err, out)
	}
	if _, err := run(); exitCode(err) != 2 {
		t.Errorf("verify without PATH: %v, want exit 2 (usage)", err)
	}
}

func TestPluginListShipped(t *testing.T) {
	out, err := exec.Command(tarzanBin, "plugin", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("plugin list: %v\n%s", err, out)
	}
	for _, want := range []string{"transport", "udp", "discovery", "static", "cover", "none", "constant", "adapter", "socks"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("plugin list lacks %q:\n%s", want, out)
		}
	}
	if l := lineWith(string(out), "transport"); !strings.Contains(l, "builtin") || !strings.Contains(l, "tarzan "+version.Release) {
		t.Errorf("plugin list: %q does not say builtin and the version", l)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
