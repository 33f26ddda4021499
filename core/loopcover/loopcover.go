// Package loopcover is loop cover, after Loopix's loop messages, built on
// the engine's public tunnel API (core/node). A cover policy that
// implements cover.Looper asks for loops at some rate; the Prober then
// keeps Options.Tunnels tunnels of the node's own (the usual path rule,
// no exit needed) and, as a Poisson process of that rate, sends a tunnel
// ping through a randomly chosen one of them to its last hop and back
// (node.Tunnel.SendPing, with its own id and nonce). On the wire a ping
// is a cell like any other, and on a shaped link it takes the place of
// padding.
//
// A loop whose reply has not come back within Options.Timeout is lost.
// When at least Options.AlertLoss of the last Options.Window loops were
// lost, a relay or link is dropping or delaying the node's traffic, as an
// active (n−1) attacker does: the prober warns (rate-limited, hops by
// short ID only), counts an alert, avoids the hops the lost loops went
// through for loopSuspectFor (30 min) and rebuilds the loop tunnels that
// used them.
// Loops sent before an alert do not count toward the next one, so that
// the loops still in flight through the hops just left do not raise it
// again.
//
// Goroutines (under the node's lifetime, node.Go): one, run, sends loops,
// expires them and keeps the loop tunnels; the node's receive goroutine
// settles the loops that come back (returned, through
// node.TunnelEvents.Pong); tunnel builds run in goroutines of their own,
// cancelled when the node stops.
package loopcover

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/ratelog"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Defaults and limits of Options.Timeout ... AlertLoss. Package config
// uses the same ones for node.toml's cover.loop_* keys.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultTunnels   = 2
	DefaultWindow    = 20
	DefaultAlertLoss = 0.5
	MaxTunnels       = 16
	MaxWindow        = 10000
)

// Options configure loop cover.
type Options struct {
	// Cover is the node's cover policy: loops are sent only when it
	// implements cover.Looper and asks for a rate above 0.
	Cover cover.Policy
	// Timeout is how long a loop's reply may take before the loop counts
	// as lost; default 5 s. Tunnels is how many tunnels loops are spread
	// over; default 2. The detector looks at the last Window loops
	// (default 20) and raises the alert when a share of at least
	// AlertLoss of them (0 < share <= 1, default 0.5) was lost.
	Timeout   time.Duration
	Tunnels   int
	Window    int
	AlertLoss float64
	// TunnelHops is the length of loop tunnels; default 3.
	TunnelHops int
}

// ErrOptions wraps every option validation error.
var ErrOptions = errors.New("loopcover: invalid options")

func (o *Options) setDefaults() {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Tunnels == 0 {
		o.Tunnels = DefaultTunnels
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.AlertLoss == 0 {
		o.AlertLoss = DefaultAlertLoss
	}
	if o.TunnelHops == 0 {
		o.TunnelHops = 3
	}
}

func (o *Options) validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("%w: Timeout %v is negative", ErrOptions, o.Timeout)
	case o.Tunnels < 1 || o.Tunnels > MaxTunnels:
		return fmt.Errorf("%w: Tunnels %d out of range 1..%d", ErrOptions, o.Tunnels, MaxTunnels)
	case o.Window < 1 || o.Window > MaxWindow:
		return fmt.Errorf("%w: Window %d out of range 1..%d", ErrOptions, o.Window, MaxWindow)
	case !(o.AlertLoss > 0 && o.AlertLoss <= 1):
		return fmt.Errorf("%w: AlertLoss %v out of range (0, 1]", ErrOptions, o.AlertLoss)
	case o.TunnelHops < 1:
		return fmt.Errorf("%w: TunnelHops %d is below 1", ErrOptions, o.TunnelHops)
	}
	if l, ok := o.Cover.(cover.Looper); ok {
		if r := l.Loops().Rate; !(r >= 0) || math.IsInf(r, 0) {
			return fmt.Errorf("%w: cover policy %s asks for %v loops per second; want a finite number >= 0", ErrOptions, o.Cover.Name(), r)
		}
	}
	return nil
}

const (
	// loopRTTKeep is how many round-trip times the median is taken over.
	loopRTTKeep = 101
	// loopTunnelLifetime is how long a loop tunnel is used before it is
	// replaced, so that loops sample new paths over time.
	loopTunnelLifetime = 10 * time.Minute
	// loopSuspectFor is how long the hops of lost loops are avoided after
	// an alert.
	loopSuspectFor = 30 * time.Minute
	// loopShowHops caps the hops an alert names.
	loopShowHops = 6
	// loopMaxGap caps the wait for the next loop.
	loopMaxGap = 24 * time.Hour
)

// Prober is the loop cover of one node. rate and opts are set in New and
// never change; n in Start; everything else is guarded by mu.
type Prober struct {
	rate    float64
	opts    Options
	n       *node.Node
	log     *slog.Logger
	limiter ratelog.Limiter

	mu       sync.Mutex
	tunnels  []*loopTunnel
	building int
	pending  map[uint64]*pendingLoop
	gen      uint64        // alerts so far: loops sent before the last one stay out of window
	window   []loopOutcome // the last LoopWindow outcomes, a ring
	wnext    int
	rtts     []time.Duration // the last loopRTTKeep round trips, a ring
	rnext    int
	suspects map[identity.ID]time.Time // hop → avoided until
	// lostOnly marks the suspects none of whose loops came back in the
	// window that raised the alert. A suspect that also carried returned
	// loops may be innocent (an entry or exit shared with a healthy loop
	// tunnel) or a relay that drops selectively, so it is the first to be
	// let back when no path avoids every suspect.
	lostOnly map[identity.ID]bool
}

type loopTunnel struct {
	t         *node.Tunnel
	built     time.Time
	retired   bool // no new loops; closed once its loops are settled
	retiredAt time.Time
	pending   int
}

type pendingLoop struct {
	lt    *loopTunnel
	hops  []identity.ID
	sent  time.Time // kept here: the PING carries no time
	gen   uint64
	nonce uint64 // the PONG must echo it
}

type loopOutcome struct {
	lost bool
	hops []identity.ID
}

// loopAlert is what an alert reports.
type loopAlert struct {
	lost, of int
	through  []identity.ID // most lost loops first
}

// New checks the options and prepares loop cover; Start starts it on a
// node.
func New(o Options) (*Prober, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Prober{
		rate: rateOf(o.Cover), opts: o,
		pending:  map[uint64]*pendingLoop{},
		suspects: map[identity.ID]time.Time{},
		lostOnly: map[identity.ID]bool{},
	}, nil
}

// Start starts sending loops on n when the policy asks for them, under
// n's lifetime (node.Go): they stop when n does.
func (lc *Prober) Start(n *node.Node) {
	lc.n = n
	lc.log = n.Logger()
	if lc.rate > 0 {
		n.Go(lc.run)
	}
}

// rateOf is the loop rate a policy asks for (0 without cover.Looper).
func rateOf(p cover.Policy) float64 {
	if l, ok := p.(cover.Looper); ok {
		return l.Loops().Rate
	}
	return 0
}

// run is the loop cover goroutine: it runs while the node does when the
// policy asked for loops.
func (lc *Prober) run() {
	n := lc.n
	// Loop ids, nonces and gaps must be unpredictable to the hops: keyed
	// from the operating system, not from Options.Rand (which tests and
	// the simulator seed).
	var seed [32]byte
	crand.Read(seed[:]) // never fails (crypto/rand)
	rnd := mrand.New(mrand.NewChaCha8(seed))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // aborts the builds in flight
	gap := func() time.Duration {
		// A draw past loopMaxGap (a tiny rate) would overflow a Duration
		// into a negative gap, which fires at once.
		s := rnd.ExpFloat64() / lc.rate
		if s >= loopMaxGap.Seconds() {
			return loopMaxGap
		}
		return time.Duration(s * float64(time.Second))
	}

	check := n.Clock().NewTicker(min(max(lc.opts.Timeout/5, 50*time.Millisecond), time.Second))
	defer check.Stop()
	next := n.Clock().NewTimer(gap())
	defer next.Stop()
	lc.keepTunnels(ctx, n.Clock().Now())
	for {
		select {
		case <-n.Done():
			return
		case now := <-check.C():
			lc.expire(now)
			lc.keepTunnels(ctx, now)
		case now := <-next.C():
			lc.sendOne(rnd, now)
			next.Reset(gap())
		}
	}
}

// sendLoop sends one loop through a random live loop tunnel; with none
// (still building) the event passes.
func (lc *Prober) sendOne(rnd *mrand.Rand, now time.Time) {
	lc.mu.Lock()
	var live []*loopTunnel
	for _, lt := range lc.tunnels {
		// A tunnel under repair has no last hop to loop through (a
		// rebuild starts from none): its loop would be lost for nothing.
		if !lt.retired && !lt.t.Closed() && !lt.t.Repairing() {
			live = append(live, lt)
		}
	}
	if len(live) == 0 {
		lc.mu.Unlock()
		return
	}
	lt := live[rnd.IntN(len(live))]
	id, nonce := rnd.Uint64(), rnd.Uint64()
	for lc.pending[id] != nil {
		id = rnd.Uint64()
	}
	// Registered before the cell leaves: the reply may beat the unlock.
	lc.pending[id] = &pendingLoop{lt: lt, hops: lt.t.HopIDs(), sent: now, gen: lc.gen, nonce: nonce}
	lt.pending++
	lc.mu.Unlock()

	// The same body as Tunnel.Ping (random id and nonce, no time), so the
	// last hop cannot tell a loop from a ping nor read our clock.
	if err := lt.t.SendPing(lt.t.Len()-1, id, nonce); errors.Is(err, node.ErrTunnelClosed) {
		// Closed since we looked: nothing left, so nothing was sent.
		lc.mu.Lock()
		if lc.pending[id] != nil {
			delete(lc.pending, id)
			lt.pending--
		}
		lc.mu.Unlock()
		return
	}
	// Any other error (a full link queue) lost the cell at our own link:
	// the loop times out and counts as lost, as it should.
	lc.n.Count(EventLoopsSent, 1)
}

// returned settles a loop whose reply came back through lt. It is
// called for every PONG on lt that no Tunnel.Ping waits for
// (node.TunnelEvents.Pong).
func (lc *Prober) returned(lt *loopTunnel, id, nonce uint64, at time.Time) {
	lc.mu.Lock()
	p := lc.pending[id]
	if p == nil || p.lt != lt || p.nonce != nonce {
		lc.mu.Unlock()
		return
	}
	delete(lc.pending, id)
	p.lt.pending--
	rtt := at.Sub(p.sent)
	lost := rtt > lc.opts.Timeout // late is lost, however the ticks fell
	if !lost {
		if len(lc.rtts) < loopRTTKeep {
			lc.rtts = append(lc.rtts, rtt)
		} else {
			lc.rtts[lc.rnext] = rtt
			lc.rnext = (lc.rnext + 1) % loopRTTKeep
		}
	}
	alert := lc.settleLocked(p, lost, at)
	lc.mu.Unlock()
	if lost {
		lc.n.Count(EventLoopsLost, 1)
	} else {
		lc.n.Count(EventLoopsReturned, 1)
	}
	lc.reportAlert(alert)
}

// expire settles as lost every loop older than Timeout.
func (lc *Prober) expire(now time.Time) {
	var alerts []*loopAlert
	lost := 0
	lc.mu.Lock()
	for id, p := range lc.pending {
		if now.Sub(p.sent) <= lc.opts.Timeout {
			continue
		}
		delete(lc.pending, id)
		p.lt.pending--
		lost++
		if a := lc.settleLocked(p, true, now); a != nil {
			alerts = append(alerts, a)
		}
	}
	lc.mu.Unlock()
	lc.n.Count(EventLoopsLost, uint64(lost))
	for _, a := range alerts {
		lc.reportAlert(a)
	}
}

// reportAlert counts an alert (nil: none) and warns, at most once per
// ratelog.Every, naming hops by short ID only.
func (lc *Prober) reportAlert(a *loopAlert) {
	if a == nil {
		return
	}
	lc.n.Count(EventLoopAlerts, 1)
	ids := make([]string, len(a.through))
	for i, id := range a.through {
		ids[i] = id.Short()
	}
	through := strings.Join(ids, ", ")
	lc.limiter.Warn(lc.log, "loop-alert",
		fmt.Sprintf("loop cover: %d of the last %d loops did not return through %s; a relay or link is dropping or delaying this node's traffic (possible active n−1 attack); rebuilding the loop tunnels through other hops", a.lost, a.of, through),
		"lost", a.lost, "window", a.of, "through", through)
}

// settleLocked records one loop's outcome in the detector's window and
// returns an alert when the window has crossed the threshold. Loops sent
// before the last alert are counted but stay out of the window.
func (lc *Prober) settleLocked(p *pendingLoop, lost bool, now time.Time) *loopAlert {
	if p.gen != lc.gen {
		return nil
	}
	size := lc.opts.Window
	o := loopOutcome{lost: lost, hops: p.hops}
	if len(lc.window) < size {
		lc.window = append(lc.window, o)
	} else {
		lc.window[lc.wnext] = o
		lc.wnext = (lc.wnext + 1) % size
	}
	if !lost || len(lc.window) < size {
		return nil
	}
	lostN := 0
	count := map[identity.ID]int{}
	returned := map[identity.ID]bool{}
	for _, o := range lc.window {
		if o.lost {
			lostN++
			for _, h := range o.hops {
				count[h]++
			}
		} else {
			for _, h := range o.hops {
				returned[h] = true
			}
		}
	}
	if float64(lostN) < lc.opts.AlertLoss*float64(size) {
		return nil
	}
	// Alert: start a fresh window, avoid the hops the lost loops went
	// through, and retire the loop tunnels that use any of them.
	lc.gen++
	lc.window, lc.wnext = lc.window[:0], 0
	a := &loopAlert{lost: lostN, of: size}
	for h := range count {
		a.through = append(a.through, h)
		lc.suspects[h] = now.Add(loopSuspectFor)
		lc.lostOnly[h] = !returned[h]
	}
	slices.SortFunc(a.through, func(x, y identity.ID) int {
		if c := count[y] - count[x]; c != 0 {
			return c
		}
		return strings.Compare(x.Short(), y.Short())
	})
	if len(a.through) > loopShowHops {
		a.through = a.through[:loopShowHops]
	}
	for _, lt := range lc.tunnels {
		if lt.retired {
			continue
		}
		for _, h := range lt.t.HopIDs() {
			if _, bad := count[h]; bad {
				lt.retired, lt.retiredAt = true, now
				break
			}
		}
	}
	return a
}

// keepTunnels closes loop tunnels that are gone or retired and done
// with, retires those past their lifetime, and starts builds until
// Tunnels are in use or being built.
func (lc *Prober) keepTunnels(ctx context.Context, now time.Time) {
	var closing []*node.Tunnel
	lc.mu.Lock()
	keep := lc.tunnels[:0]
	active := 0
	for _, lt := range lc.tunnels {
		closed := lt.t.Closed()
		if !lt.retired && !closed && now.Sub(lt.built) > loopTunnelLifetime {
			lt.retired, lt.retiredAt = true, now
		}
		if closed || (lt.retired && (lt.pending <= 0 || now.Sub(lt.retiredAt) > lc.opts.Timeout)) {
			closing = append(closing, lt.t)
			continue
		}
		keep = append(keep, lt)
		if !lt.retired {
			active++
		}
	}
	clear(lc.tunnels[len(keep):])
	lc.tunnels = keep
	need := lc.opts.Tunnels - active - lc.building
	if need < 0 {
		need = 0
	}
	lc.building += need
	var avoid, strict []identity.ID
	for h, until := range lc.suspects {
		if now.After(until) {
			delete(lc.suspects, h)
			delete(lc.lostOnly, h)
			continue
		}
		avoid = append(avoid, h)
		if lc.lostOnly[h] {
			strict = append(strict, h)
		}
	}
	lc.mu.Unlock()
	for _, t := range closing {
		t.Close()
	}
	if need > 0 {
		lc.n.Go(func() { lc.buildTunnels(ctx, need, avoid, strict) })
	}
}

// buildLoopTunnels builds count loop tunnels one after the other, each
// avoiding the suspect hops and, when the view allows, the hops of the
// other loop tunnels, so that loops sample more relays and a loss points
// at fewer of them. A constraint no path meets is relaxed: first the other
// tunnels' hops, then the suspects that also returned loops (strict keeps
// the rest), then all (loops through a suspect still detect; no loops
// detect nothing).
func (lc *Prober) buildTunnels(ctx context.Context, count int, suspects, strict []identity.ID) {
	n := lc.n
	for i := 0; i < count; i++ {
		var others []identity.ID
		for _, hops := range lc.Tunnels() {
			others = append(others, hops...)
		}
		lt := &loopTunnel{}
		spec := node.TunnelSpec{Hops: lc.opts.TunnelHops, Events: node.TunnelEvents{
			Pong: func(id, nonce uint64, at time.Time) { lc.returned(lt, id, nonce, at) },
		}}
		var t *node.Tunnel
		var err error
		for _, avoid := range [][]identity.ID{append(slices.Clone(suspects), others...), suspects, strict, nil} {
			spec.Avoid = avoid
			t, err = n.BuildTunnelWith(ctx, spec)
			if !errors.Is(err, node.ErrNoPath) || len(avoid) == 0 {
				break
			}
		}
		lc.mu.Lock()
		lc.building--
		if err == nil && !lc.stopped() {
			lt.t, lt.built = t, n.Clock().Now()
			lc.tunnels = append(lc.tunnels, lt)
		}
		lc.mu.Unlock()
		switch {
		case err == nil && lc.stopped():
			t.Close()
		case err == nil:
			n.Count(EventLoopTunnelsBuilt, 1)
			lc.log.Debug("loop tunnel built", "hops", len(t.HopIDs()))
		case ctx.Err() == nil && !lc.stopped():
			lc.limiter.Debug(lc.log, "loop-build", "loop cover: building a loop tunnel failed; retrying", "err", err)
		}
	}
}

// RTT is the median round trip of the most recent returned loops (up to
// 101) and how many that median is over; 0, 0 before any.
func (lc *Prober) RTT() (median time.Duration, samples int) {
	lc.mu.Lock()
	rtts := slices.Clone(lc.rtts)
	lc.mu.Unlock()
	if len(rtts) == 0 {
		return 0, 0
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], len(rtts)
}

// Tunnels lists the hops of the loop tunnels in use, first hop first.
// Tunnels retired after an alert or at the end of their lifetime are
// left out.
func (lc *Prober) Tunnels() [][]identity.ID {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out [][]identity.ID
	for _, lt := range lc.tunnels {
		if !lt.retired && !lt.t.Closed() {
			out = append(out, lt.t.HopIDs())
		}
	}
	return out
}

func (lc *Prober) stopped() bool {
	select {
	case <-lc.n.Done():
		return true
	default:
		return false
	}
}
