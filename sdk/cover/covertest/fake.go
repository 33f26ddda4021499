// Package covertest provides a fake cover.Policy for tests of the cover
// engine and of the coverplugin glue, and Run, the conformance checks
// every policy should pass.
//
//	p := covertest.New(10*time.Millisecond, 50) // interval, rate
//	p.SetRate(100)
//	p.SetPoisson(true)
//	... run the engine ...
//	ticks := p.Ticks()
//
//	covertest.Run(t, func(t *testing.T) cover.Policy { ... }) // in a policy's tests
package covertest

import (
	"errors"
	"slices"
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

	mu      sync.Mutex
	rate    float64
	poisson bool
	ticks   []Tick
	closed  bool
}

// New returns a policy named "fake" that ticks every interval and answers
// rate for every link.
func New(interval time.Duration, rate float64) *Policy {
	return &Policy{interval: interval, rate: rate}
}

// Factory makes a Policy from options, for Serve in tests. The option
// poisson = "true" starts it with SetPoisson(true); the rest are ignored.
func Factory(interval time.Duration, rate float64) cover.Factory {
	return func(options map[string]string) (cover.Policy, error) {
		p := New(interval, rate)
		p.poisson = options["poisson"] == "true"
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
