package node

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Loop cover, after Loopix's loop messages. A cover policy that
// implements cover.Looper asks for loops at some rate; the node then keeps
// Options.LoopTunnels tunnels of its own (the usual path rule, no exit
// needed) and, as a Poisson process of that rate, sends a tunnel ping
// through a randomly chosen one of them to its last hop and back. On the
// wire a ping is a cell like any other, and on a shaped link it takes the
// place of padding.
//
// A loop whose reply has not come back within Options.LoopTimeout is
// lost. When at least Options.LoopAlertLoss of the last Options.LoopWindow
// loops were lost, a relay or link is dropping or delaying the node's
// traffic, as an active (n−1) attacker does: the node warns (rate-limited,
// hops by short ID only), counts an alert, avoids the hops the lost loops
// went through for loopSuspectFor and rebuilds the loop tunnels that
// used them. Loops sent before an alert do not count toward the next one,
// so that the loops still in flight through the hops just left do not
// raise it again.
//
// One goroutine (loopLoop) sends loops, expires them and keeps the loop
// tunnels; the receive goroutine settles the loops that come back
// (loopReturned); tunnel builds run in goroutines of their own, tracked
// by the node's WaitGroup and cancelled when the node stops.

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

// loopCover is the node's loop state. rate is set in New and never
// changes; everything else is guarded by mu.
type loopCover struct {
	rate float64

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
	t         *Tunnel
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

// loopRateOf is the loop rate a policy asks for (0 without cover.Looper).
func loopRateOf(p cover.Policy) float64 {
	if l, ok := p.(cover.Looper); ok {
		return l.Loops().Rate
	}
	return 0
}

// loopLoop is the loop goroutine: it runs while the node does when the
// policy asked for loops.
func (n *Node) loopLoop() {
	lc := &n.loops
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

	check := n.opts.Clock.NewTicker(min(max(n.opts.LoopTimeout/5, 50*time.Millisecond), time.Second))
	defer check.Stop()
	next := n.opts.Clock.NewTimer(gap())
	defer next.Stop()
	n.maintainLoops(ctx, n.opts.Clock.Now())
	for {
		select {
		case <-n.stop:
			return
		case now := <-check.C():
			n.expireLoops(now)
			n.maintainLoops(ctx, now)
		case now := <-next.C():
			n.sendLoop(rnd, now)
			next.Reset(gap())
		}
	}
}

// sendLoop sends one loop through a random live loop tunnel; with none
// (still building) the event passes.
func (n *Node) sendLoop(rnd *mrand.Rand, now time.Time) {
	lc := &n.loops
	lc.mu.Lock()
	var live []*loopTunnel
	for _, lt := range lc.tunnels {
		// A tunnel under repair has no last hop to loop through (a
		// rebuild starts from none): its loop would be lost for nothing.
		if !lt.retired && !lt.t.isClosed() && !lt.t.isRepairing() {
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
	lc.pending[id] = &pendingLoop{lt: lt, hops: lt.t.hopIDs(), sent: now, gen: lc.gen, nonce: nonce}
	lt.pending++
	lc.mu.Unlock()

	// The same body as Tunnel.Ping (random id and nonce, no time), so the
	// last hop cannot tell a loop from a ping nor read our clock.
	if err := lt.t.send(lt.t.path.Len()-1, onion.CmdPing, onion.EncodePing(id, nonce)); errors.Is(err, ErrTunnelClosed) {
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
	n.stats.inc(EventLoopsSent)
}

// loopReturned settles a loop whose reply came back through t. It is
// called for every PONG no Tunnel.Ping waits for.
func (n *Node) loopReturned(t *Tunnel, id, nonce uint64, at time.Time) {
	lc := &n.loops
	if lc.rate == 0 {
		return
	}
	lc.mu.Lock()
	p := lc.pending[id]
	if p == nil || p.lt.t != t || p.nonce != nonce {
		lc.mu.Unlock()
		return
	}
	delete(lc.pending, id)
	p.lt.pending--
	rtt := at.Sub(p.sent)
	lost := rtt > n.opts.LoopTimeout // late is lost, however the ticks fell
	if !lost {
		if len(lc.rtts) < loopRTTKeep {
			lc.rtts = append(lc.rtts, rtt)
		} else {
			lc.rtts[lc.rnext] = rtt
			lc.rnext = (lc.rnext + 1) % loopRTTKeep
		}
	}
	alert := n.settleLocked(p, lost, at)
	lc.mu.Unlock()
	if lost {
		n.stats.inc(EventLoopsLost)
	} else {
		n.stats.inc(EventLoopsReturned)
	}
	n.reportLoopAlert(alert)
}

// expireLoops settles as lost every loop older than LoopTimeout.
func (n *Node) expireLoops(now time.Time) {
	lc := &n.loops
	var alerts []*loopAlert
	lost := 0
	lc.mu.Lock()
	for id, p := range lc.pending {
		if now.Sub(p.sent) <= n.opts.LoopTimeout {
			continue
		}
		delete(lc.pending, id)
		p.lt.pending--
		lost++
		if a := n.settleLocked(p, true, now); a != nil {
			alerts = append(alerts, a)
		}
	}
	lc.mu.Unlock()
	n.stats.add(EventLoopsLost, uint64(lost))
	for _, a := range alerts {
		n.reportLoopAlert(a)
	}
}

// reportLoopAlert counts an alert (nil: none) and warns, at most once
// per logEvery, naming hops by short ID only.
func (n *Node) reportLoopAlert(a *loopAlert) {
	if a == nil {
		return
	}
	n.stats.inc(EventLoopAlerts)
	ids := make([]string, len(a.through))
	for i, id := range a.through {
		ids[i] = id.Short()
	}
	through := strings.Join(ids, ", ")
	n.limiter.warn(n.log, "loop-alert",
		fmt.Sprintf("loop cover: %d of the last %d loops did not return through %s; a relay or link is dropping or delaying this node's traffic (possible active n−1 attack); rebuilding the loop tunnels through other hops", a.lost, a.of, through),
		"lost", a.lost, "window", a.of, "through", through)
}

// settleLocked records one loop's outcome in the detector's window and
// returns an alert when the window has crossed the threshold. Loops sent
// before the last alert are counted but stay out of the window.
func (n *Node) settleLocked(p *pendingLoop, lost bool, now time.Time) *loopAlert {
	lc := &n.loops
	if p.gen != lc.gen {
		return nil
	}
	size := n.opts.LoopWindow
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
	if float64(lostN) < n.opts.LoopAlertLoss*float64(size) {
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
		for _, h := range lt.t.hopIDs() {
			if _, bad := count[h]; bad {
				lt.retired, lt.retiredAt = true, now
				break
			}
		}
	}
	return a
}

// maintainLoops closes loop tunnels that are gone or retired and done
// with, retires those past their lifetime, and starts builds until
// LoopTunnels are in use or being built.
func (n *Node) maintainLoops(ctx context.Context, now time.Time) {
	lc := &n.loops
	var closing []*Tunnel
	lc.mu.Lock()
	keep := lc.tunnels[:0]
	active := 0
	for _, lt := range lc.tunnels {
		closed := lt.t.isClosed()
		if !lt.retired && !closed && now.Sub(lt.built) > loopTunnelLifetime {
			lt.retired, lt.retiredAt = true, now
		}
		if closed || (lt.retired && (lt.pending <= 0 || now.Sub(lt.retiredAt) > n.opts.LoopTimeout)) {
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
	need := n.opts.LoopTunnels - active - lc.building
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
		n.goRun(func() { n.buildLoopTunnels(ctx, need, avoid, strict) })
	}
}

// buildLoopTunnels builds count loop tunnels one after the other, each
// avoiding the suspect hops and, when the view allows, the hops of the
// other loop tunnels, so that loops sample more relays and a loss points
// at fewer of them. A constraint no path meets is relaxed: first the other
// tunnels' hops, then the suspects that also returned loops (strict keeps
// the rest), then all (loops through a suspect still detect; no loops
// detect nothing).
func (n *Node) buildLoopTunnels(ctx context.Context, count int, suspects, strict []identity.ID) {
	lc := &n.loops
	for i := 0; i < count; i++ {
		var others []identity.ID
		for _, hops := range n.loopTunnelHops() {
			others = append(others, hops...)
		}
		var t *Tunnel
		var err error
		for _, avoid := range [][]identity.ID{append(slices.Clone(suspects), others...), suspects, strict, nil} {
			t, err = n.buildTunnel(ctx, n.opts.TunnelHops, nil, avoid)
			if !errors.Is(err, ErrNoPath) || len(avoid) == 0 {
				break
			}
		}
		lc.mu.Lock()
		lc.building--
		if err == nil && !n.stopped() {
			lc.tunnels = append(lc.tunnels, &loopTunnel{t: t, built: n.opts.Clock.Now()})
		}
		lc.mu.Unlock()
		switch {
		case err == nil && n.stopped():
			t.Close()
		case err == nil:
			n.stats.inc(EventLoopTunnelsBuilt)
			n.log.Debug("loop tunnel built", "hops", len(t.hopIDs()))
		case ctx.Err() == nil && !n.stopped():
			n.limiter.debug(n.log, "loop-build", "loop cover: building a loop tunnel failed; retrying", "err", err)
		}
	}
}

// LoopRTT is the median round trip of the most recent returned loops (up
// to 101) and how many that median is over; 0, 0 before any.
func (n *Node) LoopRTT() (median time.Duration, samples int) {
	lc := &n.loops
	lc.mu.Lock()
	rtts := slices.Clone(lc.rtts)
	lc.mu.Unlock()
	if len(rtts) == 0 {
		return 0, 0
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], len(rtts)
}

// loopTunnelHops lists the hops of the loop tunnels in use (not retired).
func (n *Node) loopTunnelHops() [][]identity.ID {
	lc := &n.loops
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out [][]identity.ID
	for _, lt := range lc.tunnels {
		if !lt.retired && !lt.t.isClosed() {
			out = append(out, lt.t.hopIDs())
		}
	}
	return out
}
