package node

import (
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// The in-process multi-node tests run in testing/synctest bubbles:
//
//	func TestX(t *testing.T) { synctest.Test(t, testX) }
//
//	func testX(t *testing.T) { tn := startNet(t, ...); ... }
//
// Inside a bubble every clock the nodes read is the bubble's: Options.Clock
// defaults to clock.Real, whose time.Now, timers and tickers the bubble
// fakes; the in-memory network (transporttest) delivers through a channel
// and a time.Timer made in the bubble; waitFor and waitLinked poll with
// time.Sleep. Time moves only when every goroutine of the bubble is
// blocked, so a node busy on a loaded machine is never "late": a test sees
// the same virtual timeline whether the machine is idle or saturated, and
// waiting out a timeout costs no wall time. The harness starts nothing
// outside the bubble (no sockets, no goroutines) and its t.Cleanup (tn.close:
// Close, then Wait on every node) runs inside it, so every goroutine of the
// nodes has ended when the bubble does (synctest.Test fails otherwise).
//
// What stays on the wall clock: benchmarks (startNetB: they measure CPU
// time); TestFloodPingMeasure (a load measurement, opt-in); and
// TestCoverPoissonOnTheWire, which measures the spread of the gaps the
// wire sees: in virtual time every frame leaves exactly on the shaper's
// 5 ms grid, so the spread of exponential gaps of 10 ms mean takes only
// the values 0.5, 1 and 1.5 and crosses the test's 0.7 bound at random
// (2 runs in 40), where the wall clock's jitter smooths it (the exact
// shapes are asserted in simulated time: TestShapePaceGaps). No test here
// uses real sockets.

// bubbleLatency is the in-memory network's one-way delay inside a bubble.
// A real network takes time to cross; with none, everything the nodes
// exchange happens at one virtual instant and a round trip measures 0 s
// (TestAttackPingCarriesNoClock asserts it is positive). One millisecond,
// a LAN's delay, keeps every round trip far inside the timeouts the tests
// use. Outside a bubble the network keeps no delay: there the machine's
// own speed is the delay.
const bubbleLatency = time.Millisecond

// bubbleEpoch is where a bubble's clock starts (testing/synctest: "The
// initial time is midnight UTC 2000-01-01").
var bubbleEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// inBubble reports whether the caller runs in a synctest bubble: its
// clock reads within a year of the bubble epoch, which the wall clock
// never does again and no test here runs long enough to leave.
func inBubble() bool {
	return time.Now().Before(bubbleEpoch.AddDate(1, 0, 0))
}

// newTestNetwork is the in-memory network a test net runs on: with
// bubbleLatency inside a bubble, none outside.
func newTestNetwork() *transporttest.Network {
	if inBubble() {
		return transporttest.NewNetwork(transporttest.WithLatency(bubbleLatency))
	}
	return transporttest.NewNetwork()
}
