package main

import (
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// Ten node processes whose only discovery is gossip, each told the first
// node's address and nothing else: all learn every peer, bring their
// mimic links up, and a 3-hop tunnel builds. The gossip backend runs as
// each node's plugin child, so its messages cross the discoveryplugin
// glue and travel between nodes as type-6 frames.
func TestGossipDiscoveryE2E(t *testing.T) {
	const count = 10
	// The demo's gossip network: every node told the first node's
	// address and nothing else.
	nw, ctx := startE2ENet(t, count, localnet.Loopback{Cover: "none", Discovery: "gossip"}, 60*time.Second, nil)
	ns := nw.Nodes
	for _, n := range ns {
		st, err := n.Client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counters["gossip_in"] == 0 || st.Counters["gossip_out"] == 0 {
			t.Errorf("node %s: gossip_in %d, gossip_out %d: membership did not come from gossip", n.ID.Short(), st.Counters["gossip_in"], st.Counters["gossip_out"])
		}
	}
	var rep *control.TunnelReply
	var err error
	for attempt := 0; ; attempt++ {
		rep, err = ns[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: 3})
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
	if !nw.MimicChain(ctx, rep) {
		t.Errorf("consecutive hops are not mimics: %+v", rep.Hops)
	}
}
