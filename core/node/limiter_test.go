package node

import (
	"net/netip"
	"testing"
	"time"
)

// TestSourceLimiterBucket: a source gets burst at once, then rate per
// second; another source has its own bucket.
func TestSourceLimiterBucket(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := newSourceLimiter(2, 4, 16)
	a, b := netip.MustParseAddrPort("10.0.0.1:0"), netip.MustParseAddrPort("10.0.0.2:0")
	allowed := func(key netip.AddrPort, at time.Time, tries int) int {
		n := 0
		for range tries {
			if s.allow(key, at) {
				n++
			}
		}
		return n
	}
	if got := allowed(a, t0, 10); got != 4 {
		t.Fatalf("burst: %d allowed, want 4", got)
	}
	if got := allowed(b, t0, 10); got != 4 {
		t.Fatalf("second source: %d allowed, want 4 (its own bucket)", got)
	}
	if got := allowed(a, t0.Add(time.Second), 10); got != 2 {
		t.Fatalf("after 1 s: %d allowed, want 2", got)
	}
	if got := allowed(a, t0.Add(time.Hour), 10); got != 4 {
		t.Fatalf("after an hour: %d allowed, want 4 (the burst, not more)", got)
	}
	// A clock that goes back refills nothing.
	if got := allowed(a, t0, 10); got != 0 {
		t.Fatalf("clock back: %d allowed, want 0", got)
	}
	off := newSourceLimiter(-1, 0, 1)
	for range 100 {
		if !off.allow(a, t0) {
			t.Fatal("a limiter with a negative rate refused")
		}
	}
}

// TestSourceLimiterBounded: past max sources, idle buckets are swept and
// new sources share one overflow bucket; memory never grows past max.
func TestSourceLimiterBounded(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := newSourceLimiter(1, 2, 8)
	key := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 0)
	}
	for i := range 8 {
		s.allow(key(i), t0)
	}
	// The table is full and nobody is idle: new sources share one bucket
	// of burst 2.
	n := 0
	for i := 8; i < 100; i++ {
		if s.allow(key(i), t0) {
			n++
		}
	}
	if n != 2 || s.len() != 8 {
		t.Fatalf("full table: %d new sources allowed (want 2, the shared bucket), %d buckets (want 8)", n, s.len())
	}
	// Later every bucket has refilled: a new source sweeps them and gets
	// its own.
	if !s.allow(key(500), t0.Add(10*time.Second)) || s.len() != 1 {
		t.Fatalf("after refill: %d buckets, want 1 (swept, then the new one)", s.len())
	}
}

// TestSourceKey: IPv4 by address, IPv6 by /64, ports and IPv4-mapped forms
// folded.
func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3:7700":              "10.1.2.3:0",
		"[::ffff:10.1.2.3]:9":        "10.1.2.3:0",
		"[2001:db8:1:2:3:4:5:6]:7":   "[2001:db8:1:2::]:0",
		"[2001:db8:1:2:ffff::1]:700": "[2001:db8:1:2::]:0",
	} {
		if got := sourceKey(netip.MustParseAddrPort(in)); got != netip.MustParseAddrPort(want) {
			t.Errorf("sourceKey(%s) = %v, want %s", in, got, want)
		}
	}
}
