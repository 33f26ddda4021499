package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Name is the policy's name; node.toml names it with [cover] name.
const Name = "burst"

var _ cover.Factory = New

// Policy gives every link a constant rate with periodic bursts. Bursts
// are timed from the first Tick, so they do not depend on the wall clock
// of the node (nor line up across nodes started together by chance only).
type Policy struct {
	rate, burstRate float64
	every, length   time.Duration
	interval        time.Duration

	mu    sync.Mutex
	start time.Time // first Tick's now; zero before it
}

// New creates the policy from its options; it is a cover.Factory.
func New(options map[string]string) (cover.Policy, error) {
	p := &Policy{rate: 50, burstRate: 200, every: 10 * time.Second, length: time.Second, interval: 100 * time.Millisecond}
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad key first every time
	for _, k := range keys {
		v := options[k]
		var err error
		switch k {
		case "rate":
			p.rate, err = parseRate(v)
		case "burst_rate":
			p.burstRate, err = parseRate(v)
		case "burst_every":
			p.every, err = parseDuration(v)
		case "burst_for":
			p.length, err = parseDuration(v)
		case "interval":
			p.interval, err = parseDuration(v)
		default:
			return nil, fmt.Errorf("cover policy burst: unknown option %q (known: burst_every, burst_for, burst_rate, interval, rate)", k)
		}
		if err != nil {
			return nil, fmt.Errorf("cover policy burst: option %q: %w", k, err)
		}
	}
	if p.burstRate < p.rate {
		return nil, fmt.Errorf("cover policy burst: burst_rate %g is below rate %g", p.burstRate, p.rate)
	}
	if p.length >= p.every {
		return nil, fmt.Errorf("cover policy burst: burst_for %v must be shorter than burst_every %v", p.length, p.every)
	}
	return p, nil
}

func parseRate(v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || !(r > 0) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("%q is not a finite number of frames per second > 0", v)
	}
	return r, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive Go duration such as 500ms or 10s", v)
	}
	return d, nil
}

// Name returns "burst".
func (p *Policy) Name() string { return Name }

// Interval returns the "interval" option.
func (p *Policy) Interval() time.Duration { return p.interval }

// RateAt is the per-link rate at now: burst_rate for the first burst_for
// of every burst_every period, rate otherwise.
func (p *Policy) RateAt(now time.Time) float64 {
	p.mu.Lock()
	if p.start.IsZero() {
		p.start = now
	}
	since := now.Sub(p.start)
	p.mu.Unlock()
	if since >= 0 && since%p.every < p.length {
		return p.burstRate
	}
	return p.rate
}

// Tick gives every link the same rate, whatever its statistics: a
// schedule that depends on load would leak the load.
func (p *Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	r := p.RateAt(now)
	ts := make([]cover.Target, len(links))
	for i := range ts {
		ts[i].Rate = r
	}
	return ts, nil
}

// Close does nothing: the policy holds no resources.
func (p *Policy) Close() error { return nil }
