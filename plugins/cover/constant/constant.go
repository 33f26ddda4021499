// Package constant is the cover policy that makes every mimic link send
// the same number of frames per second whatever the load: data takes the
// place of padding, so an observer of the link sees a constant stream.
//
// Options:
//
//	rate      frames per second per link (default 50, > 0)
//	interval  how often the engine consults the policy (Go duration, default 100ms)
package constant

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Name is the policy's registered name.
const Name = "constant"

// Defaults.
const (
	DefaultRate     = 50.0
	DefaultInterval = 100 * time.Millisecond
)

// Policy gives every link the same constant rate.
type Policy struct {
	rate     float64
	interval time.Duration
}

var _ cover.Policy = (*Policy)(nil)

// New creates the policy from its options; it is a cover.Factory.
func New(options map[string]string) (cover.Policy, error) {
	p := &Policy{rate: DefaultRate, interval: DefaultInterval}
	for key, value := range options {
		switch key {
		case "rate":
			r, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("cover policy constant: option \"rate\": %q is not a number of frames per second", value)
			}
			if !(r > 0) || math.IsInf(r, 0) {
				return nil, fmt.Errorf("cover policy constant: option \"rate\": %s frames per second, want a finite number > 0 (use policy \"none\" for no cover)", value)
			}
			p.rate = r
		case "interval":
			d, err := time.ParseDuration(value)
			if err != nil {
				return nil, fmt.Errorf("cover policy constant: option \"interval\": %w", err)
			}
			if d <= 0 {
				return nil, fmt.Errorf("cover policy constant: option \"interval\": %s is not positive", value)
			}
			p.interval = d
		default:
			return nil, fmt.Errorf("cover policy constant: unknown option %q (want rate, interval)", key)
		}
	}
	return p, nil
}

// Name returns "constant".
func (p *Policy) Name() string { return Name }

// Interval returns the "interval" option.
func (p *Policy) Interval() time.Duration { return p.interval }

// Rate returns the frames per second every link sends.
func (p *Policy) Rate() float64 { return p.rate }

// Tick gives every link the configured rate, whatever its statistics.
func (p *Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	ts := make([]cover.Target, len(links))
	for i := range ts {
		ts[i].Rate = p.rate
	}
	return ts, nil
}

// Close does nothing.
func (p *Policy) Close() error { return nil }
