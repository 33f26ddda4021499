// Package balanced is the cover policy that keeps Tarzan's invariant: over
// every window a node sends as many frames as it receives, spread over its
// mimic links, so that an originator looks like a relay.
//
// What it defends. A global passive observer who counts every node's
// frames in and out spots an originator as a node that sends more than it
// receives, and a receiver (an exit, or the last relay before it) as one
// that receives more than it sends; followed over time, those imbalances
// link the two ends of a tunnel. Under this policy every node sends what
// it receives, whatever it originates or delivers, and its own data rides
// in slots that would otherwise carry padding.
//
// How. Each tick the policy counts the frames each link received during
// the tick, data in full and padding less the leak, and smooths those
// rates over the window. Each link i then sends
//
//	max(d_i, clamp(share_i, min_rate, max_rate))
//
// where d_i is its data demand (the data it sent during the tick plus
// what still waits in its queue, per second) and share_i depends on
// spread:
//
//   - reciprocal (the default): what link i received. Each link answers
//     its mimic frame for frame, so a node's in and out match link by
//     link, and the neighbour that receives an originator's data sends as
//     much back: the originator is balanced within a window.
//   - even: the node's total received rate split evenly over its links.
//     This spreads a flow's traffic over all of a relay's links, but a
//     node whose own data exceeds its share sends more than it receives
//     until the extra frames have raised the whole network's level
//     enough to come back to it, which they do slowly (see below).
//
// Data never waits for the policy: a link with more data than its share
// sends its data.
//
// Leak. Out = in is an equilibrium at any level, so a level raised by a
// flow would otherwise never come down. Padding received is answered
// less the leak, data received in full, so levels relax to the floor
// within seconds of the last data while a flow's both ends stay balanced
// while it lasts. A larger leak forgets bursts sooner, and so shows their
// timing more.
//
// The floor keeps a quiet node sending (a node that falls silent when its
// user does betrays the user) and keeps every link shaped (a rate of 0
// would let data out unshaped). The cap bounds what answering can make a
// link send: data is never capped, but a flow heavier than max_rate on a
// link is answered only up to it.
//
// Measured in a simulation of 30 nodes (4 or more mimic links each) and
// one 5-node tunnel of 300 frames/s for 20 s, default options otherwise
// (TestNetworkBalance): with reciprocal every node's out/in stayed within
// 2 % of 1 from the first second on, and every link was back at the floor
// 8 s after the data stopped; with even the originator sent 1.5 to 2
// times what it received for the whole 20 s.
//
// What it costs. Every node sends about what it receives, so its
// overhead is about its relayed plus received traffic: every data frame
// that crosses a link is answered by about one padding frame (back over
// the same link with reciprocal, spread over the node's links with even),
// so a tunnel's traffic costs about twice its data on each of its links.
// On top of that, at least links × min_rate frames per second when idle
// (20/s × 12 links × 1408 bytes ≈ 2.7 Mb/s at the defaults). Data on a
// quiet link waits up to 1/min_rate for its first slot and then up to a
// tick for the rate to rise.
//
// Limits. Balance holds per window, not per frame: within a window the
// timing of data still shows (use a small interval, or poisson). Per-link
// rates show the path of a flow heavier than min_rate, in both directions
// with reciprocal (only constant at a rate above the data hides it).
// Frames the engine does not shape (link handshakes, reachability probes,
// discovery messages) are not counted. It does nothing against active
// attacks: an adversary who delays or drops a node's incoming frames
// shapes its output.
//
// Options (all strings, like every plugin's):
//
//	interval  how often the engine consults the policy (Go duration, default 100ms)
//	window    over how long received rates are smoothed (Go duration >= interval, default 300ms)
//	min_rate  frames per second every link sends at least (> 0, default 20)
//	max_rate  frames per second answering may make a link send (>= min_rate, default 5000)
//	leak      fraction of received padding not answered (0 <= leak < 1, default 0.1)
//	spread    reciprocal or even (default reciprocal)
package balanced

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Name is the policy's registered name.
const Name = "balanced"

// Defaults.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultWindow   = 300 * time.Millisecond
	DefaultMinRate  = 20.0
	DefaultMaxRate  = 5000.0
	DefaultLeak     = 0.1
	DefaultSpread   = SpreadReciprocal
)

// Values of the spread option.
const (
	SpreadEven       = "even"
	SpreadReciprocal = "reciprocal"
)

// Policy balances a node's frames out against its frames in.
type Policy struct {
	interval   time.Duration
	window     time.Duration
	minRate    float64
	maxRate    float64
	leak       float64
	reciprocal bool // spread

	mu     sync.Mutex
	inRate map[string]float64 // smoothed frames received per second, by peer
}

var _ cover.Policy = (*Policy)(nil)

// New creates the policy from its options; it is a cover.Factory.
func New(options map[string]string) (cover.Policy, error) {
	p := &Policy{interval: DefaultInterval, window: DefaultWindow,
		minRate: DefaultMinRate, maxRate: DefaultMaxRate, leak: DefaultLeak,
		reciprocal: DefaultSpread == SpreadReciprocal}
	windowSet, maxSet := false, false
	for key, value := range options {
		var err error
		switch key {
		case "interval":
			p.interval, err = duration(value)
		case "window":
			p.window, err = duration(value)
			windowSet = true
		case "min_rate":
			p.minRate, err = rate(value)
			if err == nil && p.minRate == 0 {
				// Rate 0 means an unshaped link: its data would go out
				// at once, timing and all.
				err = fmt.Errorf("0 would leave quiet links unshaped; want > 0")
			}
		case "max_rate":
			p.maxRate, err = rate(value)
			maxSet = true
		case "leak":
			p.leak, err = strconv.ParseFloat(value, 64)
			if err != nil || !(p.leak >= 0 && p.leak < 1) {
				err = fmt.Errorf("%q is not a fraction in [0, 1)", value)
			}
		case "spread":
			switch value {
			case SpreadEven:
				p.reciprocal = false
			case SpreadReciprocal:
				p.reciprocal = true
			default:
				err = fmt.Errorf("%q, want %s or %s", value, SpreadReciprocal, SpreadEven)
			}
		default:
			return nil, fmt.Errorf("cover policy balanced: unknown option %q (want interval, window, min_rate, max_rate, leak, spread)", key)
		}
		if err != nil {
			return nil, fmt.Errorf("cover policy balanced: option %q: %w", key, err)
		}
	}
	// A window shorter than a tick cannot smooth anything; a default one
	// follows a long interval rather than rejecting it.
	if p.window < p.interval {
		if windowSet {
			return nil, fmt.Errorf("cover policy balanced: option \"window\": %v is shorter than the interval %v", p.window, p.interval)
		}
		p.window = p.interval
	}
	if p.maxRate < p.minRate {
		if maxSet {
			return nil, fmt.Errorf("cover policy balanced: option \"max_rate\": %v is below min_rate %v", p.maxRate, p.minRate)
		}
		p.maxRate = p.minRate
	}
	return p, nil
}

func duration(value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s is not positive", value)
	}
	return d, nil
}

func rate(value string) (float64, error) {
	r, err := strconv.ParseFloat(value, 64)
	if err != nil || !(r >= 0) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("%q is not a finite number of frames per second >= 0", value)
	}
	return r, nil
}

// Name returns "balanced".
func (p *Policy) Name() string { return Name }

// Interval returns the "interval" option.
func (p *Policy) Interval() time.Duration { return p.interval }

// Tick folds what each link received during the tick (counted over one
// interval) into its smoothed received rate, and gives each link the
// larger of its data demand and its share, the share within min_rate and
// max_rate.
func (p *Policy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	perTick := p.interval.Seconds()
	alpha := perTick / p.window.Seconds() // an EWMA over window/interval ticks
	in := make([]float64, len(links))
	var total float64
	p.mu.Lock()
	prev := p.inRate
	p.inRate = make(map[string]float64, len(links)) // links that went away are forgotten
	for i, l := range links {
		// Padding received is answered less the leak; data in full, so
		// that a flow's both ends stay balanced while it lasts.
		r := (float64(l.DataRecv) + (1-p.leak)*float64(l.CoverRecv)) / perTick
		if _, dup := p.inRate[l.Peer]; !dup { // peers are unique; if not, smooth only the first
			if old, ok := prev[l.Peer]; ok {
				r = old + alpha*(r-old)
			}
			p.inRate[l.Peer] = r
		}
		in[i] = r
		total += r
	}
	p.mu.Unlock()

	ts := make([]cover.Target, len(links))
	for i, l := range links {
		demand := (float64(l.DataSent) + float64(max(l.Queued, 0))) / perTick
		share := in[i]
		if !p.reciprocal {
			share = total / float64(len(links))
		}
		ts[i].Rate = max(demand, min(max(share, p.minRate), p.maxRate))
	}
	return ts, nil
}

// Close does nothing.
func (p *Policy) Close() error { return nil }
