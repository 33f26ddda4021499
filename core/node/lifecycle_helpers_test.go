package node

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// Circuit lifecycle (lifecycle.go): a restart shows in the link
// handshake, a cell for a circuit the receiver does not hold is answered
// with DESTROY(GONE), idle expiry and Tunnel.Close end a tunnel (no
// repair), and a node that stops cleanly tears its circuits down both
// ways. Every test runs in a synctest bubble: the nodes' clocks, timers
// and the in-memory network all run on virtual time, so nothing depends
// on the machine's speed.

// crashRestart stops node i the way kill -9 does (its transport closes
// first, so nothing it would still say gets out) and starts a new process
// of it: the same identity and address, new link and onion keys, an
// empty view, no circuits. It is down for a second (descriptors carry
// whole seconds: its new one must be newer). It returns the new node and
// when it started.
func (tn *testNet) crashRestart(i int) (*Node, time.Time) {
	tn.t.Helper()
	old := tn.nodes[i]
	for _, s := range old.opts.Transports {
		s.Transport.Close()
	}
	old.Close()
	old.Wait()
	time.Sleep(time.Second)
	return tn.startAgain(i)
}

// startAgain starts a new process of node i (stopped) at its address.
func (tn *testNet) startAgain(i int) (*Node, time.Time) {
	return tn.startAgainCtx(context.Background(), i)
}

// startAgainCtx is startAgain with the context the node runs under.
func (tn *testNet) startAgainCtx(ctx context.Context, i int) (*Node, time.Time) {
	tn.t.Helper()
	old := tn.nodes[i]
	o := old.opts
	o.Transports = []TransportSpec{{Transport: tn.net.NewTransport(), Listen: old.opts.Transports[0].Listen}}
	var addrs []netip.AddrPort
	for j := range tn.nodes {
		addrs = append(addrs, addrOf(j))
	}
	d := newListDiscovery(addrs)
	o.Discovery = d
	n, err := New(o)
	if err != nil {
		tn.t.Fatal(err)
	}
	at := time.Now()
	if err := n.Start(ctx); err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[i], tn.disc[i] = n, d
	return n, at
}

func (tn *testNet) index(id identity.ID) int {
	for i, n := range tn.nodes {
		if n.id == id {
			return i
		}
	}
	tn.t.Fatalf("no node %s", id.Short())
	return -1
}

// relayCirc is the relay circuit n holds whose previous hop is prev (the
// test builds one tunnel through it), or nil.
func relayCirc(n *Node, prev identity.ID) *circuit {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, r := range n.routes {
		if r.c != nil && !r.fromNext && k.peer == prev {
			return r.c
		}
	}
	return nil
}

// hasNext reports whether relay circuit c still has a next side.
func hasNext(c *circuit) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextL != nil
}

// holds reports whether n holds any route on its link to peer.
func holds(n *Node, peer identity.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for key := range n.routes {
		if key.peer == peer {
			k++
		}
	}
	return k
}

// sessionSince reports whether n's link to peer sends on a session made
// at or after at.
func sessionSince(n *Node, peer identity.ID, at time.Time) bool {
	l := n.upLink(peer)
	if l == nil {
		return false
	}
	s, _ := l.sendSession()
	return s != nil && !s.Created().Before(at)
}

// destroySeen records the DESTROYs nodes receive, per receiver and
// sender.
type destroySeen struct {
	mu     sync.Mutex
	byPair map[[2]identity.ID][]destroyRec // [receiver, sender]
}

type destroyRec struct {
	circ   uint32
	reason byte
}

func newDestroySeen() *destroySeen { return &destroySeen{byPair: map[[2]identity.ID][]destroyRec{}} }

// tapFor is a Tap for the node at that records what it receives.
func (d *destroySeen) tapFor(at identity.ID) *Tap {
	return &Tap{Received: func(from identity.ID, pl []byte) bool {
		if pl[0] == kindDestroy {
			d.mu.Lock()
			k := [2]identity.ID{at, from}
			d.byPair[k] = append(d.byPair[k], destroyRec{binary.BigEndian.Uint32(pl[4:8]), pl[payloadHeader]})
			d.mu.Unlock()
		}
		return true
	}}
}

// get lists the DESTROYs at received from from.
func (d *destroySeen) get(at, from identity.ID) []destroyRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]destroyRec(nil), d.byPair[[2]identity.ID{at, from}]...)
}

// reasons lists the reasons of the DESTROYs at received from from.
func (d *destroySeen) reasons(at, from identity.ID) []byte {
	var out []byte
	for _, r := range d.get(at, from) {
		out = append(out, r.reason)
	}
	return out
}

func (d *destroySeen) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := 0
	for _, r := range d.byPair {
		k += len(r)
	}
	return k
}

// idleTunnelNet starts 8 nodes (k = 4) and builds one 3-hop tunnel from
// the first, which then stays idle: the setup of the lifecycle tests,
// each of which breaks the tunnel's path its own way. Call it inside
// synctest.Test; ctx bounds the test's own waits.
func idleTunnelNet(t *testing.T) (*testNet, *Node, *Tunnel, context.Context) {
	t.Helper()
	tn := startNet(t, 8, 4, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	return tn, src, tun, ctx
}
