package loopcover

import (
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
)

// loopNet is an in-memory network (nodetest) whose every node runs loop
// cover with its cover policy (which asks for loops or not).
type loopNet struct {
	*nodetest.Net
	probers []*Prober
}

// startLoopNet starts count nodes with k mimics each; tweak may change
// node i's options (its cover policy, say).
func startLoopNet(t *testing.T, count, k int, tweak func(i int, o *node.Options)) *loopNet {
	t.Helper()
	ln := &loopNet{probers: make([]*Prober, count)}
	ln.Net = nodetest.Start(t, nodetest.Config{Nodes: count, K: k,
		Tweak: func(i int, o *node.Options) {
			if tweak != nil {
				tweak(i, o)
			}
			p, err := New(Options{Cover: o.Cover})
			if err != nil {
				t.Fatal(err)
			}
			ln.probers[i] = p
		},
		Attach: func(i int, n *node.Node) { ln.probers[i].Start(n) },
	})
	return ln
}

// status is what the control API shows of a node running loop cover: the
// engine's status and the prober's (node.Status no longer holds it).
type status struct {
	node.Status
	LoopRTT     time.Duration
	LoopTunnels [][]identity.ID
}

func (ln *loopNet) status(i int) status {
	rtt, _ := ln.probers[i].RTT()
	return status{Status: ln.Nodes[i].Status(), LoopRTT: rtt, LoopTunnels: ln.probers[i].Tunnels()}
}
