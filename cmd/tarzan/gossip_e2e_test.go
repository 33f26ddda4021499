package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
)

// Ten node processes whose only discovery is gossip, each told the first
// node's address and nothing else: all learn every peer, bring their
// mimic links up, and a 3-hop tunnel builds. The gossip backend runs as
// each node's plugin child, so its messages cross the discoveryplugin
// glue and travel between nodes as type-6 frames.
func TestGossipDiscoveryE2E(t *testing.T) {
	const count = 10
	dir := t.TempDir()
	ns, err := writeDemoNet(dir, count, demoOptions{cover: "none"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		path := filepath.Join(n.dir, "node.toml")
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Discovery = config.Plugin{Name: "gossip", Options: map[string]string{
			"bootstrap": ns[0].addr.String(),
			"interval":  "500ms",
		}}
		if err := config.Write(path, cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { stopDemoNodes(ns) })
	if err := launchNodes(tarzanBin, ns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := func(string, ...any) {}
	if err := waitControl(ctx, ns, quiet); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := waitMembership(ctx, ns, quiet); err != nil {
		for _, n := range ns {
			b, _ := os.ReadFile(filepath.Join(n.dir, "node.log"))
			t.Logf("log of %s:\n%s", n.id.Short(), tail(string(b), 15))
		}
		t.Fatal(err)
	}
	t.Logf("%d nodes learned every peer and linked their mimics in %v", count, time.Since(start).Round(10*time.Millisecond))
	for _, n := range ns {
		st, err := n.client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counters["gossip_in"] == 0 || st.Counters["gossip_out"] == 0 {
			t.Errorf("node %s: gossip_in %d, gossip_out %d: membership did not come from gossip", n.id.Short(), st.Counters["gossip_in"], st.Counters["gossip_out"])
		}
	}
	var rep *control.TunnelReply
	for attempt := 0; ; attempt++ {
		rep, err = ns[0].client.Tunnel(ctx, control.TunnelRequest{Hops: 3})
		if err == nil || attempt >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("building a 3-hop tunnel: %v", err)
	}
	if len(rep.Hops) != 3 {
		t.Fatalf("tunnel has %d hops: %+v", len(rep.Hops), rep)
	}
	if !mimicChain(ctx, ns, rep) {
		t.Errorf("consecutive hops are not mimics: %+v", rep.Hops)
	}
}
