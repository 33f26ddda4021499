package node

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/onion"
)

// A relay that lost a circuit without its DESTROY getting through (here
// its state is simply dropped) answers the next cell for it with
// DESTROY(GONE): the hop before it learns, and the initiator repairs,
// instead of sending into a black hole until the tunnel idles out.
func TestUnknownCircuitAnsweredGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn, src, tun, ctx := idleTunnelNet(t)
		hops := tun.Hops()
		h1, h2 := tn.byID(hops[0].ID), tn.byID(hops[1].ID)
		c := relayCirc(h2, h1.id)
		h2.mu.Lock()
		delete(h2.routes, c.prev)
		delete(h2.routes, c.next)
		h2.releaseCircuitLocked(c.prev.peer)
		h2.mu.Unlock()
		if _, err := tun.Ping(ctx, 2); err == nil {
			t.Fatal("ping through a hop that forgot the circuit came back")
		}
		waitFor(t, "a repair after the hop forgot the circuit", 5*time.Second, func() bool {
			return repairsOf(src) > 0
		})
		if got := h2.Stat(EventGoneSent); got == 0 {
			t.Errorf("%s = 0 at the hop that forgot the circuit", EventGoneSent)
		}
	})
}

// A CREATED for a circuit we no longer hold (we gave up waiting, or
// forgot it) is answered DESTROY(GONE), so the hop that made the circuit
// frees it at once instead of holding a ghost until it idles out.
func TestStrayCreatedAnsweredGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 4, 3, nil)
		a, b := tn.nodes[0], tn.nodes[1]
		p, _ := a.view.Get(b.id)
		_, msg, err := onion.NewClientHandshake(a.opts.Rand, b.id, p.Desc.OnionKey)
		if err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		id := a.newCircIDLocked(b.id) // not registered: a never holds it
		a.mu.Unlock()
		pl := make([]byte, link.PayloadSize)
		pl[0] = kindCreate
		putCirc(pl, id)
		copy(pl[payloadHeader:], msg)
		made := b.Stat(EventCircuits)
		if err := a.SendLinkPayload(b.id, pl); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "b to make the circuit", 2*time.Second, func() bool { return b.Stat(EventCircuits) > made })
		time.Sleep(time.Second)
		if k := holds(b, a.id); k != 0 {
			t.Fatalf("b still holds the circuit a does not know, 1 s after its CREATED (a ghost until it idles out)")
		}
	})
}

// Attack: a mimic sends a burst of cells for circuits its peer does not
// hold, to make it answer each one (doubling what the burst costs it) or
// to learn something from the answers. The answers are bounded per link
// (the rest are dropped and counted), a DESTROY is never answered, and
// the only thing answered is the state of circuit IDs on the sender's own
// link.
func TestUnknownCircuitRepliesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seen := newDestroySeen()
		tn := startNet(t, 4, 3, func(i int, o *Options) {
			if i == 0 {
				o.Tap = seen.tapFor(o.Identity.ID())
			}
		})
		a, b := tn.nodes[0], tn.nodes[1]
		send := func(kind byte, id uint32) {
			pl := make([]byte, link.PayloadSize)
			pl[0] = kind
			putCirc(pl, id)
			if err := a.SendLinkPayload(b.id, pl); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 200 {
			send(kindDestroy, uint32(1000+i))
		}
		time.Sleep(time.Second)
		if k := seen.count(); k != 0 {
			t.Fatalf("%d DESTROYs answered a DESTROY for an unknown circuit", k)
		}
		const burst = 1000
		start := time.Now()
		for i := range burst {
			kind := byte(kindRelayFwd)
			if i%2 == 1 {
				kind = kindRelayBwd
			}
			send(kind, uint32(5000+i))
		}
		time.Sleep(100 * time.Millisecond)
		elapsed := time.Since(start).Seconds()
		got := seen.count()
		limit := goneReplyBurst + int(elapsed*goneReplyRate) + 1
		t.Logf("%d cells for unknown circuits, %d answered with DESTROY(GONE) in %.1f s (limit %d), %d dropped unanswered",
			burst, got, elapsed, limit, b.Stat(DropGoneReplyRate))
		if got == 0 {
			t.Fatal("no cell for an unknown circuit was answered")
		}
		if got > limit {
			t.Fatalf("%d answers to a burst of %d, want at most %d", got, burst, limit)
		}
		for _, r := range seen.get(a.id, b.id) {
			if r.reason != destroyGone || r.circ < 5000 || r.circ >= 5000+burst {
				t.Fatalf("answer %+v: want reason GONE on one of the sender's own circuit IDs", r)
			}
		}
		if d := b.Stat(DropGoneReplyRate); d < uint64(burst-limit) {
			t.Errorf("%s = %d, want at least %d", DropGoneReplyRate, d, burst-limit)
		}
	})
}
