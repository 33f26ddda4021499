package node

import (
	"math"
	mrand "math/rand/v2"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// The cover engine. The policy sets a per-link target once per policy
// tick; between ticks the engine releases each shaped link's frames on a
// fine grid: queued data first, padding when there is none, so on the wire
// a shaped link sends the same number of identical-looking frames whatever
// it carries. Frames are spaced evenly, or at exponential gaps (a Poisson
// process) when the target asks for it.
//
// The grid is a schedule, not a ticker: the engine wakes only at the grid
// slot in which the next frame of some link falls due (slots in which no
// link has a frame due pass without a wake-up), and not at all while no
// link is shaped, so a node under the `none` policy, or an idle one with
// slow links, is not woken 200 times a second for nothing.

const shapeGrid = 5 * time.Millisecond

// Bounds on how far ahead the shaper plans its next wake-up, in grid
// slots. A policy tick re-plans in any case.
const (
	maxSleepSlots  = 200 // 1 s: a shaped link slower than that still wakes the engine once a second
	downSleepSlots = 10  // 50 ms: how soon a shaped link that comes up again starts sending
)

// shaper is the state of shapeLoop beyond each link's credit: which links
// send at Poisson gaps and the randomness those gaps come from. Only
// shapeLoop touches it, so it needs no lock.
type shaper struct {
	n       *Node
	poisson map[*peerLink]struct{} // links whose target asks for Poisson gaps
	rnd     *mrand.Rand            // made when a link first asks for Poisson gaps
	links   []*peerLink            // reused by every wake-up

	// The grid: active while some link is shaped. slot is the last grid
	// slot accounted for; slots follow it every shapeGrid.
	active bool
	slot   time.Time
}

func (n *Node) shapeLoop() {
	policy := n.opts.Cover
	if policy == nil {
		return
	}
	interval := policy.Interval()
	if interval <= 0 {
		interval = time.Second
	}
	s := &shaper{n: n, poisson: map[*peerLink]struct{}{}}
	policyTick := n.opts.Clock.NewTicker(interval)
	defer policyTick.Stop()
	grid := n.opts.Clock.NewTimer(time.Hour)
	grid.Stop()
	defer grid.Stop()
	var gridC <-chan time.Time // nil while no link is shaped
	for {
		var now time.Time
		select {
		case <-n.stop:
			return
		case now = <-policyTick.C():
			s.advance(now)
			s.consultPolicy(policy, now)
			// A reload may have swapped the policy behind a proxy
			// (host/reload.go): its interval applies from the next tick.
			if iv := policy.Interval(); iv > 0 && iv != interval {
				interval = iv
				policyTick.Reset(iv)
			}
			switch {
			case !s.active && s.anyShaped():
				s.active, s.slot = true, now
			case !s.active:
				// A payload queued as its link's rate went to 0
				// waits at most one policy interval.
				s.flushUnshaped()
			}
		case now = <-gridC:
			s.advance(now)
		}
		gridC = nil
		grid.Stop()
		if !s.active {
			continue
		}
		slots := s.plan()
		if slots == 0 {
			// Nothing is shaped any more: one last flush, then sleep
			// until a policy tick shapes a link again.
			s.active = false
			s.flushUnshaped()
			continue
		}
		grid.Reset(s.slot.Add(time.Duration(slots) * shapeGrid).Sub(n.opts.Clock.Now()))
		gridC = grid.C()
	}
}

// advance accounts for the grid slots that ended by now and sends what
// each shaped link is due in them. Slots passed over without a wake-up
// had no frame due (plan saw to that), so accounting for them together
// is the same as one at a time; after a stall (a late wake-up) they count
// as one long slot, whose credit cap keeps the link from bursting.
func (s *shaper) advance(now time.Time) {
	if !s.active {
		return
	}
	k := now.Sub(s.slot) / shapeGrid
	if k <= 0 {
		return // a wake-up left over from an earlier plan
	}
	s.slot = s.slot.Add(k * shapeGrid)
	s.releaseShaped(float64(k) * shapeGrid.Seconds())
}

// plan returns in how many grid slots from s.slot the next frame of some
// shaped link falls due (at most maxSleepSlots; downSleepSlots while a
// shaped link is down), or 0 when no link is shaped.
func (s *shaper) plan() int {
	s.links = s.n.establishedLinks(s.links[:0])
	defer clear(s.links)
	best, shaped := maxSleepSlots, false
	for _, l := range s.links {
		rate := l.getRate()
		if rate == 0 {
			continue
		}
		shaped = true
		if !l.up() {
			best = min(best, downSleepSlots)
			continue
		}
		_, poisson := s.poisson[l]
		best = min(best, slotsUntilDue(l.credit, rate, poisson, best))
	}
	if !shaped {
		return 0
	}
	return best
}

// slotsUntilDue is the first k in 1..limit for which pace, called on a
// link with this credit for k grid slots at once, returns a frame (limit
// when none does).
func slotsUntilDue(credit, rate float64, poisson bool, limit int) int {
	due := func(k int) bool {
		c := credit + rate*(float64(k)*shapeGrid.Seconds())
		if poisson {
			return c >= 0
		}
		return c >= 1
	}
	need := 1.0
	if poisson {
		need = 0
	}
	// A first guess from the arithmetic, then the exact test: pace adds
	// in floating point, and the guess may be a slot off either way.
	k := int(math.Ceil((need - credit) / (rate * shapeGrid.Seconds())))
	k = max(1, min(k, limit))
	for k > 1 && due(k-1) {
		k--
	}
	for k < limit && !due(k) {
		k++
	}
	return k
}

// anyShaped reports whether some link has a rate.
func (s *shaper) anyShaped() bool {
	s.links = s.n.establishedLinks(s.links[:0])
	defer clear(s.links)
	for _, l := range s.links {
		if l.shaped() {
			return true
		}
	}
	return false
}

// flushUnshaped sends at once what waits in the queue of links that are
// no longer shaped.
func (s *shaper) flushUnshaped() {
	s.links = s.n.establishedLinks(s.links[:0])
	defer clear(s.links)
	for _, l := range s.links {
		if !l.shaped() {
			s.n.flushQueue(l)
		}
	}
}

// consultPolicy gives the policy the last tick's per-link statistics and
// applies the targets it answers with.
func (s *shaper) consultPolicy(policy cover.Policy, now time.Time) {
	n := s.n
	links := n.establishedLinks(nil)
	stats := make([]cover.LinkStats, len(links))
	for i, l := range links {
		stats[i] = cover.LinkStats{
			Peer:      l.id.Short(),
			Queued:    len(l.queue),
			DataSent:  since(&l.dataSent, &l.seen.dataSent),
			CoverSent: since(&l.coverSent, &l.seen.coverSent),
			DataRecv:  since(&l.dataRecv, &l.seen.dataRecv),
			CoverRecv: since(&l.coverRecv, &l.seen.coverRecv),
		}
	}
	targets, err := policy.Tick(now, stats)
	if err != nil {
		// A failing policy must not stop the data: fall back to unshaped
		// links until it answers again. Poisson links keep their mode
		// (and their pending gap, which stays valid): the next answer
		// decides.
		n.limiter.Warn(n.log, "cover", "cover policy failed; links unshaped until it recovers", "policy", policy.Name(), "err", err)
		for _, l := range links {
			l.setRate(0)
		}
		return
	}
	for i, l := range links {
		if i < len(targets) {
			old := l.getRate()
			l.setRate(targets[i].Rate)
			s.setMode(l, old, targets[i].Poisson)
		}
	}
	s.forgetClosed()
}

// setMode starts a link's pacing afresh when it switches between even and
// Poisson gaps, or starts being shaped. For Poisson, credit holds minus
// the unit-rate time left before the next frame (see pace), so the link
// waits a fresh exponential gap; for the even grid, it starts at
// evenPhase.
func (s *shaper) setMode(l *peerLink, oldRate float64, poisson bool) {
	_, was := s.poisson[l]
	switch {
	case poisson && !was:
		s.poisson[l] = struct{}{}
		l.credit = -s.rand().ExpFloat64()
	case !poisson && was:
		delete(s.poisson, l)
		l.credit = evenPhase(l.getRate())
	case !poisson && oldRate == 0:
		l.credit = evenPhase(l.getRate())
	}
}

// evenPhase is the credit an evenly paced link starts from: half a grid
// slot's worth, so that frames fall due half-way between ticks. Started
// from 0, a rate that divides the grid (50/s: 0.25 per slot) brings the
// credit to exactly 1 on a tick, and whether a frame leaves on that tick
// or the next then hangs on microseconds of tick lateness: the metronome
// turns into 15/25 ms gaps that follow the machine's load. Half a slot
// away from the boundary, only a tick more than 2.5 ms late moves a frame.
func evenPhase(rate float64) float64 {
	_, frac := math.Modf(0.5 * rate * shapeGrid.Seconds())
	return frac
}

// forgetClosed drops the Poisson mode of links the node no longer has, so
// that a closed link is not kept alive by the map.
func (s *shaper) forgetClosed() {
	if len(s.poisson) == 0 {
		return
	}
	n := s.n
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
	for l := range s.poisson {
		if n.links[l.id] != l {
			delete(s.poisson, l)
		}
	}
}

// rand is the source of Poisson gaps. It is seeded from the padding
// generator, itself seeded from Options.Rand, so a simulation with a fixed
// Rand draws the same gaps; ChaCha8 so the gaps seen on a link do not
// predict the next ones. It is made on first use, so that even-grid
// policies draw nothing.
func (s *shaper) rand() *mrand.Rand {
	if s.rnd == nil {
		var seed [32]byte
		_, _ = s.n.pad.Read(seed[:]) // ChaCha8 reads never fail
		s.rnd = mrand.New(mrand.NewChaCha8(seed))
	}
	return s.rnd
}

// establishedLinks appends the node's links to buf.
func (n *Node) establishedLinks(buf []*peerLink) []*peerLink {
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
	if buf == nil {
		buf = make([]*peerLink, 0, len(n.links))
	}
	for _, l := range n.links {
		buf = append(buf, l)
	}
	return buf
}

// releaseShaped sends what each shaped link is due for dt seconds, and
// flushes the queue of links that just became unshaped.
func (s *shaper) releaseShaped(dt float64) {
	n := s.n
	s.links = n.establishedLinks(s.links[:0])
	for _, l := range s.links {
		_, poisson := s.poisson[l]
		rate := l.getRate()
		if rate == 0 {
			// A Poisson link keeps its pending gap: by memorylessness
			// it is as good as a fresh one when shaping resumes.
			if !poisson {
				l.credit = 0
			}
			n.flushQueue(l)
			continue
		}
		if !l.up() {
			continue
		}
		var rnd *mrand.Rand
		if poisson {
			rnd = s.rand()
		}
		for due := pace(&l.credit, rate, dt, rnd); due > 0; due-- {
			select {
			case p := <-l.queue:
				n.sealAndSend(l, p, false)
			default:
				p := getBuf()
				clear(p.payload())
				p.payload()[0] = kindPadding
				n.sealAndSend(l, p, true)
			}
		}
	}
	clear(s.links) // do not keep closed links alive until the next tick
}

// pace advances one shaped link's send clock by dt seconds at rate frames
// per second and returns how many frames are due now.
//
// Even grid (rnd nil): credit accrues rate·dt and every whole unit is a
// frame, so frames are 1/rate apart.
//
// Poisson (rnd set): credit is minus the unit-rate time left before the
// next frame. It accrues rate·dt; whenever it reaches 0 a frame is due and
// a fresh Exp(1) gap is subtracted. That is a unit-rate Poisson process
// run on the clock rate·t: gaps are exponential with mean 1/rate, several
// frames fall in one grid slot when gaps are short, and a new rate applies
// at once without redrawing, since the pending gap is memoryless.
//
// Either way the credit is capped, so a stalled loop does not burst
// afterwards. pace allocates nothing.
func pace(credit *float64, rate, dt float64, rnd *mrand.Rand) int {
	*credit += rate * dt
	if maxCredit := rate*0.05 + 1; *credit > maxCredit {
		*credit = maxCredit
	}
	due := 0
	if rnd == nil {
		for *credit >= 1 {
			*credit--
			due++
		}
		return due
	}
	for *credit >= 0 {
		*credit -= rnd.ExpFloat64()
		due++
	}
	return due
}

func (n *Node) flushQueue(l *peerLink) {
	for {
		select {
		case p := <-l.queue:
			n.sealAndSend(l, p, false)
		default:
			return
		}
	}
}
