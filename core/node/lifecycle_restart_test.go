package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
)

// Attack: a relay in the middle of a tunnel crashes and comes back within
// the link timeout. Its neighbours' links never go down (its new
// handshake replaces the old session), so before protocol v3 the circuit
// through it stayed a black hole for good. Now its handshake says FRESH,
// and the hop before it ends the circuit's far side in that same
// handshake: the initiator hears TRUNCATED and repairs. The tunnel is
// idle throughout, so only the handshake can have told anyone.
func TestRestartedRelayEndsCircuitsAtHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn, src, tun, ctx := idleTunnelNet(t)
		hops := tun.Hops()
		h1 := tn.byID(hops[0].ID)
		c := relayCirc(h1, src.id)
		if c == nil || !hasNext(c) {
			t.Fatal("hop 1 holds no extended circuit for the tunnel")
		}
		_, restarted := tn.crashRestart(tn.index(hops[1].ID))
		waitFor(t, "hop 1's link to the restarted hop 2", 20*time.Second, func() bool {
			return sessionSince(h1, hops[1].ID, restarted)
		})
		linked := time.Now()
		t.Logf("hop 2 back and linked to hop 1 after %v (virtual)", linked.Sub(restarted))
		deadline := linked.Add(time.Second)
		for hasNext(c) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if hasNext(c) {
			time.Sleep(15 * time.Second)
			t.Fatalf("hop 1 still extends the circuit to the restarted hop 2 (a black hole) 1 s after their new handshake (and 15 s later: %v)",
				hasNext(c))
		}
		t.Logf("hop 1 dropped the dead side %v after the handshake", time.Since(linked))
		waitFor(t, "the initiator's repair", 10*time.Second, func() bool {
			return repairsOf(src) > 0
		})
		for i := range tun.Hops() {
			if _, err := tun.Ping(ctx, i); err != nil {
				t.Fatalf("ping hop %d after the repair: %v", i+1, err)
			}
		}
		if got := h1.Stat(EventPeerRestarts); got == 0 {
			t.Errorf("%s = 0 at hop 1", EventPeerRestarts)
		}
	})
}

// The same for the tunnel's first hop: the initiator's own circuit on the
// link to it ends at the handshake.
func TestRestartedFirstHopEndsOwnTunnel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn, src, tun, _ := idleTunnelNet(t)
		_, key := tun.circ()
		_, restarted := tn.crashRestart(tn.index(key.peer))
		waitFor(t, "the initiator's link to the restarted hop 1", 20*time.Second, func() bool {
			return sessionSince(src, key.peer, restarted)
		})
		time.Sleep(100 * time.Millisecond)
		src.mu.Lock()
		r, held := src.routes[key]
		src.mu.Unlock()
		if held && r.t == tun {
			t.Fatal("the initiator still routes its tunnel over the circuit the restarted hop 1 forgot")
		}
	})
}

// A rekey between two live processes never says FRESH and never costs a
// circuit: across several rekeys the tunnel keeps every hop.
func TestRekeyKeepsCircuits(t *testing.T) {
	// Rekey every 10 s instead of 2 min: the same handshakes, a sixth of
	// the virtual time to simulate. No test here runs in parallel.
	defer func(a, b time.Duration) { link.RekeyAfterTime, link.ResponderRekeyAfterTime = a, b }(link.RekeyAfterTime, link.ResponderRekeyAfterTime)
	link.RekeyAfterTime, link.ResponderRekeyAfterTime = 10*time.Second, 15*time.Second
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 6, 4, func(i int, o *Options) {
			o.MaintenanceInterval = 250 * time.Millisecond // minutes of virtual time: keep the CPU down
		})
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		l := src.upLink(tun.Hops()[0].ID)
		s0, _ := l.sendSession()
		for range 4 {
			time.Sleep(link.RekeyAfterTime / 2)
			for i := range 3 {
				if _, err := tun.Ping(ctx, i); err != nil {
					t.Fatalf("ping hop %d: %v", i+1, err)
				}
			}
		}
		if s, _ := l.sendSession(); s == s0 {
			t.Fatal("the link to hop 1 was never rekeyed: the test tests nothing")
		}
		for _, n := range tn.nodes {
			if got := n.Stat(EventPeerRestarts); got != 0 {
				t.Errorf("%s: %s = %d after rekeys alone", n.id.Short(), EventPeerRestarts, got)
			}
		}
		if got := repairsOf(src); got != 0 {
			t.Errorf("%d repairs after rekeys alone", got)
		}
	})
}

// Two nodes starting at once cross FRESH initiations; one delayed behind
// the handshake that brought the link up (or a retry of it) still says
// FRESH after circuits were built. It must not end them: within
// link.HandshakeTimeout of a FRESH handshake, a FRESH initiation under the
// same link key is a duplicate. Here b sends one more FRESH initiation
// right after a tunnel was built through it.
func TestDuplicateFreshInitiationKeepsCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 4, 3, nil)
		a, b := tn.nodes[0], tn.nodes[1]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := a.BuildTunnelPath(ctx, []identity.ID{b.id})
		if err != nil {
			t.Fatal(err)
		}
		l := b.upLink(a.id)
		al := a.upLink(b.id)
		al.mu.Lock()
		since := time.Since(al.freshAt)
		al.mu.Unlock()
		if since >= link.HandshakeTimeout {
			t.Fatalf("the link came up %v ago: too long for this test", since)
		}
		l.mu.Lock()
		cur := l.cur
		l.cur = nil // so that b's next initiation says FRESH, as a crossed start-up one did
		l.mu.Unlock()
		b.initiate(l)
		l.mu.Lock()
		if l.cur == nil {
			l.cur = cur
		}
		l.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		if _, err := tun.Ping(ctx, 0); err != nil {
			t.Fatalf("the tunnel did not survive a duplicate FRESH initiation: %v", err)
		}
		if got := a.Stat(EventPeerRestarts); got != 0 {
			t.Errorf("%s = %d", EventPeerRestarts, got)
		}
	})
}
