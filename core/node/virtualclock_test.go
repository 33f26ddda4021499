package node

import (
	"time"
)

// virtualClock is the clock helpers of the tunnel-check tests. They run
// in testing/synctest bubbles, whose time is already virtual: it moves
// only when every goroutine of the test waits, so whatever the nodes
// decide by their clock (timeouts, tickers, the tunnel check) happens at
// the same virtual instants however busy the machine is. The nodes use
// clock.Real, which reads the bubble's time; these helpers measure in it.
type virtualClock struct{}

func newVirtualClock() *virtualClock {
	if !inBubble() {
		panic("virtualClock: the tunnel-check tests must run in a synctest bubble (synctest.Test)")
	}
	return &virtualClock{}
}

func (c *virtualClock) Now() time.Time { return time.Now() }

// sleep waits d of virtual time.
func (c *virtualClock) sleep(d time.Duration) { time.Sleep(d) }

// waitFor polls cond every millisecond of virtual time until it holds or
// limit has passed; it returns whether cond held and the time it took.
func (c *virtualClock) waitFor(limit time.Duration, cond func() bool) (bool, time.Duration) {
	start := time.Now()
	for {
		if cond() {
			return true, time.Since(start)
		}
		if time.Since(start) > limit {
			return false, time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
}
