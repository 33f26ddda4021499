package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// These tests run the real binary: nodes as separate processes on
// loopback, each with its plugins as child processes.

var tarzanBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tarzan-bin-")
	if err != nil {
		panic(err)
	}
	tarzanBin = filepath.Join(dir, "tarzan")
	out, err := exec.Command("go", "build", "-o", tarzanBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startProcNet(t *testing.T, count int, transport string) *localnet.Net {
	t.Helper()
	nw, _ := startE2ENet(t, count, localnet.Loopback{Cover: "none", Transport: transport}, time.Minute, nil)
	return nw
}

func TestTransportPluginKilledTunnelResumes(t *testing.T) {
	for _, tr := range []string{"udp", "dtls", "kcp"} {
		t.Run(tr, func(t *testing.T) { testPluginKilled(t, tr) })
	}
}

func testPluginKilled(t *testing.T, transport string) {
	ns := startProcNet(t, 6, transport).Nodes
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src := ns[0]
	tun, err := src.Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	// The relay: hop 1 of the tunnel.
	var relay *localnet.Node
	for _, n := range ns {
		if n.ID.Short() == tun.Hops[0].ID {
			relay = n
		}
	}
	if relay == nil {
		t.Fatalf("hop 1 %s is not one of our nodes", tun.Hops[0].ID)
	}
	st, err := relay.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, p := range st.Plugins {
		if p.Kind == "transport" {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatalf("relay reports no out-of-process transport: %+v", st.Plugins)
	}
	if ppid := parentOf(pid); ppid != relay.PID() {
		t.Fatalf("transport plugin %d has parent %d, want the node %d", pid, ppid, relay.PID())
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The node survives and restarts its plugin.
	deadline := time.Now().Add(15 * time.Second)
	restarted := false
	for time.Now().Before(deadline) && !restarted {
		time.Sleep(100 * time.Millisecond)
		st, err := relay.Client.Status(ctx)
		if err != nil {
			continue
		}
		for _, p := range st.Plugins {
			if p.Kind == "transport" && p.Restarts >= 1 && p.PID != 0 && p.PID != pid {
				restarted = true
			}
		}
	}
	if !restarted {
		t.Fatal("transport plugin was not restarted")
	}
	if relay.Exited() {
		t.Fatal("relay node died with its plugin")
	}
	// Pings through the relay resume on the same tunnel, within 5 s of
	// the restart.
	restartedAt := time.Now()
	var lastErr error
	for time.Since(restartedAt) < 5*time.Second {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rep, err := src.Client.PingTunnel(pctx, tun.ID)
		cancel()
		if err == nil && len(rep.Hops) == 3 {
			t.Logf("%s: pings resumed %v after the restart was seen", transport, time.Since(restartedAt).Round(time.Millisecond))
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pings through the relay did not resume within 5 s: %v", lastErr)
}

func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return -1
	}
	p := 0
	for _, c := range f[1] {
		p = p*10 + int(c-'0')
	}
	return p
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestValidateNamesFileLineKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.toml")
	os.WriteFile(path, []byte("[node]\nidentity = \"identity.key\"\n\n[mimics]\ncount = 99\n"), 0o644)
	out, err := exec.Command(tarzanBin, "validate", "-c", path).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a broken file:\n%s", out)
	}
	if !strings.Contains(string(out), "node.toml:5") || !strings.Contains(string(out), "mimics.count") {
		t.Fatalf("error does not name file, line and key:\n%s", out)
	}
}
