// Package covertest provides a fake cover.Policy for tests of the cover
// engine and of the coverplugin glue, and Run, the conformance checks
// every policy should pass.
//
//	p := covertest.New(10*time.Millisecond, 50) // interval, rate
//	p.SetRate(100)
//	p.SetPoisson(true)
//	p.SetLoopRate(20) // before the node starts: it reads Loops once
//	... run the engine ...
//	ticks := p.Ticks()
//
//	covertest.Run(t, func(t *testing.T) cover.Policy { ... }) // in a policy's tests
package covertest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Tick is one recorded call of Policy.Tick.
type Tick struct {
	Now   time.Time
	Links []cover.LinkStats // a copy
}

// Policy is a fake cover.Policy: every link gets the same settable
// target, and every tick is recorded.
type Policy struct {
	interval time.Duration

	mu       sync.Mutex
	rate     float64
	poisson  bool
	loopRate float64
	ticks    []Tick
	closed   bool
}

var _ cover.Looper = (*Policy)(nil)

// New returns a policy named "fake" that ticks every interval and answers
// rate for every link.
func New(interval time.Duration, rate float64) *Policy {
	return &Policy{interval: interval, rate: rate}
}

// Factory makes a Policy from options, for Serve in tests. The option
// poisson = "true" starts it with SetPoisson(true), loop_rate = "N" with
// SetLoopRate(N); the rest are ignored.
func Factory(interval time.Duration, rate float64) cover.Factory {
	return func(options map[string]string) (cover.Policy, error) {
		p := New(interval, rate)
		p.poisson = options["poisson"] == "true"
		if v, ok := options["loop_rate"]; ok {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("covertest: option \"loop_rate\": %q is not a number", v)
			}
			p.loopRate = r
		}
		return p, nil
	}
}

// SetRate changes the rate answered from the next tick on.
func (p *Policy) SetRate(r float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = r
}

// SetPoisson changes the Target.Poisson answered from the next tick on.
func (p *Policy) SetPoisson(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.poisson = on
}

// SetLoopRate sets the loops per second Loops answers (default 0: none).
// The node reads Loops once, when it starts.
func (p *Policy) SetLoopRate(r float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loopRate = r
}

// Loops implements cover.Looper with the rate set by SetLoopRate.
func (p *Policy) Loops() cover.Loops {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cover.Loops{Rate: p.loopRate}
}

// Ticks returns the ticks so far.
func (p *Policy) Ticks() []Tick {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ticks)
}

func (p *Policy) Name() string            { return "fake" }
func (p *Policy) Interval() time.Duration { return p.interval }

func (p *Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("covertest: policy closed")
	}
	p.ticks = append(p.ticks, Tick{Now: now, Links: slices.Clone(links)})
	out := make([]cover.Target, len(links))
	for i := range out {
		out[i] = cover.Target{Rate: p.rate, Poisson: p.poisson}
	}
	return out, nil
}

func (p *Policy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}
