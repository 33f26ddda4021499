package view

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

func peer(seed byte, addr string, expires time.Time) *Peer {
	var id identity.ID
	id[0] = seed
	return &Peer{ID: id, Addr: netip.MustParseAddrPort(addr), Desc: &descriptor.Descriptor{Expires: expires}}
}

// RemoveExpired drops exactly the peers whose descriptor expired, also
// after later additions with earlier expiries.
func TestRemoveExpired(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	v := New()
	v.Add(peer(1, "10.1.0.1:7000", t0.Add(10*time.Second)))
	v.Add(peer(2, "10.2.0.1:7000", t0.Add(20*time.Second)))
	if n := v.RemoveExpired(t0.Add(5 * time.Second)); n != 0 || v.Len() != 2 {
		t.Fatalf("at +5s removed %d, %d left; want 0, 2", n, v.Len())
	}
	// Added later but expiring first: must not hide behind the cached
	// next expiry.
	v.Add(peer(3, "10.3.0.1:7000", t0.Add(7*time.Second)))
	if n := v.RemoveExpired(t0.Add(8 * time.Second)); n != 1 || v.Len() != 2 {
		t.Fatalf("at +8s removed %d, %d left; want 1, 2", n, v.Len())
	}
	if _, ok := v.Get(identity.ID{3}); ok {
		t.Fatal("expired peer 3 still in the view")
	}
	if n := v.RemoveExpired(t0.Add(15 * time.Second)); n != 1 {
		t.Fatalf("at +15s removed %d, want 1", n)
	}
	if n := v.RemoveExpired(t0.Add(25 * time.Second)); n != 1 || v.Len() != 0 {
		t.Fatalf("at +25s removed %d, %d left; want 1, 0", n, v.Len())
	}
	if len(v.Tops()) != 0 {
		t.Fatalf("domains left after every peer expired: %v", v.Tops())
	}
}
