package node

import (
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/clock"
)

// virtualClock is a clock.Clock whose time moves only when advance is
// called: every node of a test network shares one, so whatever the nodes
// decide by their clock (timeouts, tickers, the tunnel check) happens at
// the same virtual instants however fast the machine runs. Timers and
// tickers fire in deadline order as time passes them; Stop and Reset
// drain a pending value, as Go's own timers do since Go 1.23.
type virtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*vtimer]struct{}
}

type vtimer struct {
	c      *virtualClock
	ch     chan time.Time
	at     time.Time
	period time.Duration // 0: one-shot
}

func newVirtualClock() *virtualClock {
	// Near the real time: descriptors and sessions carry wall-clock times.
	return &virtualClock{now: time.Now(), timers: map[*vtimer]struct{}{}}
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) NewTimer(d time.Duration) clock.Timer { return c.start(d, 0) }

func (c *virtualClock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("virtualClock: non-positive ticker interval")
	}
	return vticker{c.start(d, d)}
}

func (c *virtualClock) start(d, period time.Duration) *vtimer {
	t := &vtimer{c: c, ch: make(chan time.Time, 1), period: period}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked(t, d)
	return t
}

// armLocked sets t to fire d from now; a deadline already reached fires
// at once, like time.NewTimer(0).
func (c *virtualClock) armLocked(t *vtimer, d time.Duration) {
	t.at = c.now.Add(d)
	c.timers[t] = struct{}{}
	if d <= 0 {
		c.fireLocked(t)
	}
}

func (c *virtualClock) fireLocked(t *vtimer) {
	select {
	case t.ch <- t.at:
	default: // a ticker whose reader is behind drops ticks, like time.Ticker
	}
	if t.period > 0 {
		t.at = t.at.Add(t.period)
	} else {
		delete(c.timers, t)
	}
}

// advance moves time forward by d, firing every timer whose deadline it
// passes, earliest first.
func (c *virtualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for {
		var next *vtimer
		for t := range c.timers {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.fireLocked(next)
	}
	c.now = end
}

// pump advances the clock by step every realEvery of real time until the
// test ends: the nodes' goroutines get real time to react between steps.
// Tests measure in virtual time only; with step = 4 × realEvery a
// round trip that the nodes answer in well under 100 ms of real time
// looks like well under 400 ms of virtual time, far inside every timeout
// the tests use.
func (c *virtualClock) pump(t testing.TB, step, realEvery time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(realEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				c.advance(step)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// sleep waits until the pumped clock has moved d forward.
func (c *virtualClock) sleep(d time.Duration) {
	end := c.Now().Add(d)
	for c.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
}

// waitFor polls cond until it holds or limit of virtual time has passed;
// it returns whether cond held and the virtual time it took.
func (c *virtualClock) waitFor(limit time.Duration, cond func() bool) (bool, time.Duration) {
	start := c.Now()
	for {
		if cond() {
			return true, c.Now().Sub(start)
		}
		if c.Now().Sub(start) > limit {
			return false, c.Now().Sub(start)
		}
		time.Sleep(time.Millisecond)
	}
}

func (t *vtimer) C() <-chan time.Time { return t.ch }

func (t *vtimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, active := t.c.timers[t]
	delete(t.c.timers, t)
	t.drain()
	return active
}

func (t *vtimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, active := t.c.timers[t]
	t.drain()
	if t.period > 0 {
		if d <= 0 {
			panic("virtualClock: non-positive ticker interval")
		}
		t.period = d
	}
	t.c.armLocked(t, d)
	return active
}

func (t *vtimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// vticker is a vtimer with clock.Ticker's method signatures.
type vticker struct{ t *vtimer }

func (v vticker) C() <-chan time.Time   { return v.t.ch }
func (v vticker) Stop()                 { v.t.Stop() }
func (v vticker) Reset(d time.Duration) { v.t.Reset(d) }

var _ clock.Clock = (*virtualClock)(nil)
