package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/host/localnet"
)

// `tarzan tunnel` and the plugin counters against node processes (gossip
// discovery, every plugin out of process), as a user runs them: by the
// node's node.toml.
func TestTunnelCommandsProcesses(t *testing.T) {
	nw, _ := startE2ENet(t, 5, localnet.Loopback{Cover: "none", Discovery: "gossip"}, time.Minute, nil)
	cfg := filepath.Join(nw.Nodes[0].Dir, "node.toml")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(tarzanBin, args...).CombinedOutput()
		return string(out), err
	}
	out, err := run("tunnel", "build", "-c", cfg, "-hops", "3")
	m := regexp.MustCompile(`^tunnel (\d+) built in [0-9.]+ ms through 3 hops`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("tunnel build: %v\n%s", err, out)
	}
	id := m[1]
	if out, err = run("tunnel", "list", "-c", cfg); err != nil || !regexp.MustCompile(`(?m)^`+id+` +kept `).MatchString(out) {
		t.Fatalf("tunnel list: %v\n%s", err, out)
	}
	if out, err = run("tunnel", "ping", "-config", cfg, "-c", "2", "-i", "0", id); err != nil || strings.Count(out, "2 sent, 2 received") != 3 {
		t.Fatalf("tunnel ping: %v\n%s", err, out)
	}
	if out, err = run("status", "-c", cfg); err != nil || !strings.Contains(out, "tunnel "+id+" (kept)") ||
		!regexp.MustCompile(`plugin discovery gossip .*\n(    .*\n)*    .*msgs_out [1-9]`).MatchString(out) {
		t.Fatalf("status: %v\n%s\nwant the kept tunnel and gossip's own counters (out of process)", err, out)
	}
	if out, err = run("plugin", "list", "-c", cfg); err != nil || !regexp.MustCompile(`plugin transport +udp .*\n(    .*\n)*    .*plugin_packets_in [1-9]`).MatchString(out) {
		t.Fatalf("plugin list: %v\n%s\nwant the udp plugin's counters", err, out)
	}
	if out, err = run("tunnel", "close", "-c", cfg, id); err != nil || out != "closed tunnel "+id+"\n" {
		t.Fatalf("tunnel close: %v\n%s", err, out)
	}
	if out, err = run("tunnel", "close", "-c", cfg, id); err == nil || !strings.Contains(out, "no open tunnel "+id) {
		t.Fatalf("closing it again: %v\n%s", err, out)
	}
	nw.Stop()
	if out, err = run("tunnel", "list", "-c", cfg); err == nil || !strings.Contains(out, "is the node running?") {
		t.Fatalf("tunnel list with the node stopped: %v\n%s", err, out)
	}
}
