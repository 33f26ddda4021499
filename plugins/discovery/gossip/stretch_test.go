package gossip

import (
	crand "crypto/rand"
	"math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// signedDescriptor is a fresh node's descriptor, published now.
func signedDescriptor(t *testing.T, i int) []byte {
	t.Helper()
	id, err := identity.Generate(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var lk, ok [32]byte
	crand.Read(lk[:])
	crand.Read(ok[:])
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), 7000)
	d := &descriptor.Descriptor{LinkKey: lk, OnionKey: ok, Addrs: []descriptor.Addr{{Transport: "udp", AddrPort: ap}},
		Published: time.Now(), Expires: time.Now().Add(3 * time.Hour)}
	b, err := d.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An idle node's rounds stretch while nothing changes, doubling up to
// maxStretch intervals, and come back to one interval as soon as it
// learns something. Virtual time (synctest): the counts are exact.
func TestRoundsStretchWhenQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := simOptions()
		g := newGossip(o, time.Now, rand.NewPCG(1, 2), false)
		if err := g.Admitted([][]byte{signedDescriptor(t, 2)}); err != nil {
			t.Fatal(err)
		}
		if err := g.Start(signedDescriptor(t, 1)); err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		// Rounds at 0, then 1, 2, 4, 8, 16, 32, 32, ... intervals apart
		// (what Start and Admitted set up is news for the first).
		time.Sleep(200*o.interval + o.interval/2)
		got := g.rounds.Load()
		// 0, 1, 3, 7, 15, 31, 63, 95, 127, 159, 191: 11 rounds.
		if got != 11 {
			t.Errorf("%d rounds in 200 quiet intervals, want 11", got)
		}
		// News: the next round comes one interval after the last one
		// (at 191, so at once), then the waits stretch again.
		if err := g.Admitted([][]byte{signedDescriptor(t, 3)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := g.rounds.Load(); r != got+1 {
			t.Errorf("news: %d rounds at once, want 1", r-got)
		}
		time.Sleep(3*o.interval + o.interval/2)
		if r := g.rounds.Load(); r != got+3 {
			t.Errorf("news: %d rounds in the next 3 intervals, want 3 (at 0, 1 and 3)", r-got)
		}
	})
}
