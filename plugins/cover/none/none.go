// Package none is the cover policy that sends no cover: every link's
// target rate is 0, so data goes out at once and no padding is sent. It
// offers no protection against a global passive observer; use it for
// tests, benchmarks, and to measure what cover costs.
package none

import (
	"fmt"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Name is the policy's registered name.
const Name = "none"

// interval is long because there is nothing to adjust: the answer is
// always 0, and each Tick of an out-of-process policy is a round trip
// that wakes the node and the plugin. The engine's shaper, seeing no
// shaped link, does not run its grid at all (core/node/cover.go).
const interval = time.Hour

// Policy is the no-cover policy.
type Policy struct{}

var _ cover.Policy = Policy{}

// New creates the policy; it takes no options. It is a cover.Factory.
func New(options map[string]string) (cover.Policy, error) {
	for key := range options {
		return nil, fmt.Errorf("cover policy none: unknown option %q (it takes none)", key)
	}
	return Policy{}, nil
}

// Name returns "none".
func (Policy) Name() string { return Name }

// Interval returns one second.
func (Policy) Interval() time.Duration { return interval }

// Tick returns rate 0 ("no shaping") for every link.
func (Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	return make([]cover.Target, len(links)), nil
}

// Close does nothing.
func (Policy) Close() error { return nil }
