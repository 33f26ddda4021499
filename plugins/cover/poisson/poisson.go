// Package poisson is the Loopix-style cover policy: every mimic link sends
// frames as a Poisson process of one fixed rate, whatever it carries. Data
// takes the place of padding in the next event, so the process an
// observer sees is the same whether the link is busy or idle.
//
// What it defends. Like constant, it hides from a global passive observer
// when and how much data a link carries, up to the rate: an originator,
// a relay and an idle node look alike. Unlike constant, whose frames
// leave evenly spaced, the gaps between frames are exponential and
// independent (the engine draws them, see cover.Target.Poisson), so they
// carry no phase: a frame that leaves at an odd moment is what the
// process does anyway, not a sign that data arrived. A cell a relay
// forwards waits for the link's next event, an exponential wait of mean
// 1/rate when the queue is empty, which blurs the timing that links a
// relay's incoming cells to its outgoing ones (in Loopix each message is
// delayed that way on purpose; here the wait is the link's, and a link's
// queue stays first in, first out).
//
// What it costs. Every link sends rate frames per second always: at the
// default 50/s and 12 links, 600 frames of 1408 bytes per second, about
// 6.8 Mb/s per node, whatever the load. A link carries at most rate data
// frames per second (more waits in the link's queue, and is dropped when
// that is full), and each hop adds a wait of about 1/rate (20 ms at the
// default) to a cell that finds the link idle, more behind a backlog.
//
// Loop cover. With loop_rate > 0 the policy also asks the node for loops
// (cover.Looper): as a Poisson process of loop_rate per second, the node
// sends a cell through one of its own 3-hop tunnels to the last hop and
// back (a tunnel ping, which on the wire is one more data cell). A loop
// whose reply does not come back in time is lost; when too many of the
// recent loops are lost the node warns that a relay or link is dropping
// or delaying its traffic, names the hops by short ID, and rebuilds its
// loop tunnels through others. That is what Loopix's loops are for:
// detecting an active (n−1) attacker who holds back a node's traffic and
// watches what comes out. Loops also make every node a sender of tunnel
// traffic, idle or not. Each loop is six cells (three links out, three
// back); on links this policy shapes they take the place of padding, so
// they add no frames to the wire, only the relays' onion work and a share
// of each link's rate that data could have used. The node keeps a few
// loop tunnels open (two by default). The detection thresholds and the loop timeout are the node's options
// (core/node), not the policy's. Limits: a loop ends at the last hop of
// a tunnel, which answers it and so knows it is a ping (the hops before it
// see only cells), and an attacker who can tell loop tunnels from data
// tunnels by their pattern could spare the loops; see docs/COVER.md.
//
// Limits. Frames the engine does not shape (link handshakes, reachability
// probes, discovery messages) are outside the process.
//
// Options (all strings, like every plugin's):
//
//	rate      mean frames per second per link (> 0, default 50)
//	loop_rate mean loops per second the node sends (>= 0, default 0: no loops)
//	interval  how often the engine consults the policy (Go duration, default 100ms;
//	          the schedule never changes, so a tick only shapes links that came
//	          up since the last one, and those send unshaped until then)
package poisson

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Name is the policy's registered name.
const Name = "poisson"

// Defaults.
const (
	DefaultRate     = 50.0
	DefaultInterval = 100 * time.Millisecond
	DefaultLoopRate = 0.0
)

// Policy gives every link the same Poisson rate, and asks the node for
// loops at loopRate.
type Policy struct {
	rate     float64
	interval time.Duration
	loopRate float64
}

var (
	_ cover.Policy = (*Policy)(nil)
	_ cover.Looper = (*Policy)(nil)
)

// New creates the policy from its options; it is a cover.Factory.
func New(options map[string]string) (cover.Policy, error) {
	p := &Policy{rate: DefaultRate, interval: DefaultInterval}
	for key, value := range options {
		switch key {
		case "rate":
			r, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("cover policy poisson: option \"rate\": %q is not a number of frames per second", value)
			}
			if !(r > 0) || math.IsInf(r, 0) {
				return nil, fmt.Errorf("cover policy poisson: option \"rate\": %s frames per second, want a finite number > 0 (use policy \"none\" for no cover)", value)
			}
			p.rate = r
		case "interval":
			d, err := time.ParseDuration(value)
			if err != nil {
				return nil, fmt.Errorf("cover policy poisson: option \"interval\": %w", err)
			}
			if d <= 0 {
				return nil, fmt.Errorf("cover policy poisson: option \"interval\": %s is not positive", value)
			}
			p.interval = d
		case "loop_rate":
			r, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("cover policy poisson: option \"loop_rate\": %q is not a number of loops per second", value)
			}
			if !(r >= 0) || math.IsInf(r, 0) {
				return nil, fmt.Errorf("cover policy poisson: option \"loop_rate\": %s loops per second, want a finite number >= 0 (0: no loops)", value)
			}
			p.loopRate = r
		default:
			return nil, fmt.Errorf("cover policy poisson: unknown option %q (want rate, interval, loop_rate)", key)
		}
	}
	return p, nil
}

// Name returns "poisson".
func (p *Policy) Name() string { return Name }

// Interval returns the "interval" option.
func (p *Policy) Interval() time.Duration { return p.interval }

// Rate returns the mean frames per second every link sends.
func (p *Policy) Rate() float64 { return p.rate }

// Tick gives every link the configured rate at Poisson gaps, whatever its
// statistics.
func (p *Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	ts := make([]cover.Target, len(links))
	for i := range ts {
		ts[i] = cover.Target{Rate: p.rate, Poisson: true}
	}
	return ts, nil
}

// Loops asks the node for loop_rate loops per second (0: none).
func (p *Policy) Loops() cover.Loops { return cover.Loops{Rate: p.loopRate} }

// Close does nothing.
func (p *Policy) Close() error { return nil }
