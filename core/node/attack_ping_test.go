package node

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
)

// clockIn reports the first window of b that reads as a time within a
// minute of now (the sender runs in this process: its clock is ours; a
// random window falls that close with a chance below 10^-7), in any common encoding: big- or little-endian, 8 bytes in
// ns, µs, ms or s since the Unix epoch, 4 bytes in s. A last hop that
// finds one can link the tunnels of one node by its clock's offset.
func clockIn(b []byte, now time.Time) (off int, unit string, ok bool) {
	near := func(v, ref, slack float64) bool { return math.Abs(v-ref) <= slack }
	span := time.Minute
	refs := []struct {
		unit string
		ref  float64
		per  float64 // units per span
	}{
		{"ns", float64(now.UnixNano()), float64(span)},
		{"µs", float64(now.UnixMicro()), float64(span / time.Microsecond)},
		{"ms", float64(now.UnixMilli()), float64(span / time.Millisecond)},
		{"s", float64(now.Unix()), span.Seconds()},
	}
	for i := 0; i+8 <= len(b); i++ {
		for _, v := range []uint64{binary.BigEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i:])} {
			for _, r := range refs {
				if near(float64(int64(v)), r.ref, r.per) {
					return i, r.unit + "/8", true
				}
			}
		}
	}
	for i := 0; i+4 <= len(b); i++ {
		for _, v := range []uint32{binary.BigEndian.Uint32(b[i:]), binary.LittleEndian.Uint32(b[i:])} {
			if near(float64(v), float64(now.Unix()), span.Seconds()) {
				return i, "s/4", true
			}
		}
	}
	return 0, "", false
}

// The last hop of two tunnels of one node reads every PING the node
// sends through them (pings and loop cover). It must find no clock in
// them: no window reads as the time in any common encoding, and the part
// after the ID is not a counter either (consecutive bodies are far
// apart, as random ones are). Round trips are still measured.
func TestAttackPingCarriesNoClock(t *testing.T) { synctest.Test(t, testAttackPingCarriesNoClock) }

func testAttackPingCarriesNoClock(t *testing.T) {
	tn, taps := startTapNet(t, 10, 3, nil)
	src := tn.nodes[0]
	table := src.mimicTable()
	// Two tunnels with different first hops that end at one node h.
	var a, b, h *Node
	firsts := src.Mimics()
search:
	for i, ma := range firsts {
		for _, mb := range firsts[i+1:] {
			for _, cand := range tn.nodes {
				if cand == src || cand.id == ma.ID || cand.id == mb.ID {
					continue
				}
				if table.AreMimics(ma.ID, cand.id) && table.AreMimics(mb.ID, cand.id) {
					a, b, h = tn.byID(ma.ID), tn.byID(mb.ID), cand
					break search
				}
			}
		}
	}
	if h == nil {
		t.Skip("no node is a mimic of two of the source's mimics in this draw")
	}
	var mu sync.Mutex
	var bodies [][]byte
	seen := func(cmd byte, data []byte) {
		if onion.Command(cmd) == onion.CmdPing {
			mu.Lock()
			bodies = append(bodies, append([]byte(nil), data...))
			mu.Unlock()
		}
	}
	taps[h.id].delivered.Store(&seen)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for _, first := range []*Node{a, b} {
		tun, err := src.BuildTunnelPath(ctx, []identity.ID{first.id, h.id})
		if err != nil {
			t.Fatalf("tunnel through %s to %s: %v", first.id.Short(), h.id.Short(), err)
		}
		for range 4 {
			rtt, err := tun.Ping(ctx, 1)
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			if rtt <= 0 || rtt > stepTimeout {
				t.Errorf("ping round trip %v, want in (0, %v]", rtt, stepTimeout)
			}
		}
		tun.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 8 {
		t.Fatalf("the last hop saw %d PINGs, want 8", len(bodies))
	}
	now := time.Now()
	for i, body := range bodies {
		if off, unit, ok := clockIn(body, now); ok {
			t.Errorf("PING %d (% x) carries the sender's clock at byte %d (%s)", i, body, off, unit)
		}
	}
	// A clock or counter in the 8 bytes after the ID moves little from
	// one ping to the next; random bytes are 2^40 apart but for a
	// chance of 2^-23.
	for i := 1; i < len(bodies); i++ {
		x, y := int64(binary.BigEndian.Uint64(bodies[i-1][8:])), int64(binary.BigEndian.Uint64(bodies[i][8:]))
		if d := x - y; d > -1<<40 && d < 1<<40 {
			t.Errorf("PINGs %d and %d: bytes 8..16 differ by only %d: predictable", i-1, i, d)
		}
	}
	t.Logf("%d PINGs at the last hop of two tunnels, e.g. % x", len(bodies), bodies[0])
}
