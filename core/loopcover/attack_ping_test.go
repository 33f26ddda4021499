package loopcover

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
	"github.com/tarzan-net/tarzan/core/onion"
)

// clockIn (a copy of core/node's, whose tests this package cannot
// import) reports the first window of b that reads as a time within a
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

// Loops are pings too: the last hop of a loop tunnel sees no clock in
// them either, and loop round trips are still measured.
func TestAttackLoopPingCarriesNoClock(t *testing.T) {
	synctest.Test(t, testAttackLoopPingCarriesNoClock)
}

func testAttackLoopPingCarriesNoClock(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	tn := startLoopNet(t, 8, 3, func(i int, o *node.Options) {
		if i == 0 {
			o.Cover = loopPolicy(20)
			return
		}
		o.Tap = &node.Tap{Delivered: func(_ identity.ID, _ uint32, cmd byte, data []byte) {
			if onion.Command(cmd) == onion.CmdPing {
				mu.Lock()
				bodies = append(bodies, append([]byte(nil), data...))
				mu.Unlock()
			}
		}}
	})
	src, lp := tn.Nodes[0], tn.probers[0]
	nodetest.WaitFor(t, "20 loops back", 30*time.Second, func() bool { return src.Stat(EventLoopsReturned) >= 20 })
	if rtt, samples := lp.RTT(); rtt <= 0 || samples == 0 {
		t.Errorf("loop RTT %v over %d loops", rtt, samples)
	}
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	for i, body := range bodies {
		if off, unit, ok := clockIn(body, now); ok {
			t.Fatalf("loop PING %d of %d (% x) carries the sender's clock at byte %d (%s)", i, len(bodies), body, off, unit)
		}
	}
	t.Logf("%d loop PINGs checked", len(bodies))
}
