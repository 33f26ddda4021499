package view

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// TestAttackRollbackRefused: once a view holds a descriptor for an ID, an
// older one (by published time) never replaces it, at the same address or
// at another.
func TestAttackRollbackRefused(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	id := identity.ID{7}
	mk := func(published time.Time, addr string, key byte) *Peer {
		d := &descriptor.Descriptor{Published: published, Expires: published.Add(time.Hour)}
		d.LinkKey[0] = key
		return &Peer{ID: id, Addr: netip.MustParseAddrPort(addr), Desc: d, Admitted: t0}
	}
	v := New()
	if !v.Add(mk(t0, "10.1.0.1:7000", 1)) {
		t.Fatal("first descriptor refused")
	}
	for _, addr := range []string{"10.1.0.1:7000", "10.99.0.1:7000"} {
		if v.Add(mk(t0.Add(-time.Minute), addr, 2)) {
			t.Errorf("ATTACK SUCCEEDED: an older descriptor at %s replaced the newer one", addr)
		}
		p, _ := v.Get(id)
		if p.Desc.LinkKey[0] != 1 || p.Addr != netip.MustParseAddrPort("10.1.0.1:7000") {
			t.Fatalf("ATTACK SUCCEEDED: view now holds link key %d at %v", p.Desc.LinkKey[0], p.Addr)
		}
	}
	// A newer one still replaces it, wherever it was proven.
	if !v.Add(mk(t0.Add(time.Minute), "10.2.0.1:7000", 3)) {
		t.Fatal("newer descriptor refused")
	}
	if p, _ := v.Get(id); p.Desc.LinkKey[0] != 3 {
		t.Fatalf("view holds link key %d, want 3", p.Desc.LinkKey[0])
	}
}

// TestSilentPeersRemoved: heard times come from Add and Touch; RemoveSilent
// drops exactly the peers not heard since the cut-off.
func TestSilentPeersRemoved(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	v := New()
	for i, addr := range []string{"10.1.0.1:7000", "10.2.0.1:7000", "10.3.0.1:7000"} {
		p := peer(byte(i+1), addr, t0.Add(time.Hour))
		p.Desc.Published = t0
		p.Admitted = t0
		v.Add(p)
	}
	if !v.Touch(identity.ID{2}, t0.Add(time.Minute)) {
		t.Fatal("Touch of a peer in the view reported it absent")
	}
	v.Touch(identity.ID{2}, t0) // earlier: no change
	if v.Touch(identity.ID{9}, t0) {
		t.Fatal("Touch of an unknown peer reported it present")
	}
	if h, _ := v.Heard(identity.ID{2}); !h.Equal(t0.Add(time.Minute)) {
		t.Fatalf("peer 2 heard at %v, want %v", h, t0.Add(time.Minute))
	}
	if q := v.Quiet(t0.Add(30 * time.Second)); len(q) != 2 {
		t.Fatalf("%d quiet peers, want 2", len(q))
	}
	gone := v.RemoveSilent(t0.Add(30 * time.Second))
	if len(gone) != 2 || v.Len() != 1 {
		t.Fatalf("removed %d, %d left; want 2, 1", len(gone), v.Len())
	}
	if _, ok := v.Get(identity.ID{2}); !ok {
		t.Fatal("the peer heard recently was removed")
	}
	if _, ok := v.Heard(identity.ID{1}); ok {
		t.Fatal("a removed peer still has a heard time")
	}
}
