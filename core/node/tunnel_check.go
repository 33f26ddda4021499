package node

import (
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/onion"
)

// End-to-end liveness of tunnels that carry traffic (issue 11). A relay
// that restarted, or a link that half-died, black-holes a tunnel without
// telling anyone; the link timeout (30 s) notices a dead link only, and
// not a live link whose far end lost the circuit. So the initiator
// watches each of its tunnels for one of two signs that traffic stopped
// flowing, and only then asks every hop whether it still answers:
//
//   - trigger A (upload, request): a DATA cell went forward after the
//     last cell heard from the exit, more than Quiet ago, and the exit
//     has said nothing since;
//   - trigger B (a download that stalls): the exit had been delivering
//     in bulk (checkBulkCells DATA cells in the checkBulkSpan before its
//     last one) and has been silent for Quiet. The client may send
//     nothing then, so trigger A cannot see it.
//
// The check pings every hop at once (the body of Tunnel.Ping: random id
// and nonce) and waits CheckTimeout. The exit's PONG crosses every hop
// both ways, so it alone proves the tunnel healthy. Otherwise the highest
// hop that answered is h (-1: none) and the check calls hopLost(h+1):
// every hop up to h forwards and answers, hop h+1 or the link to it does
// not. A check that found the tunnel healthy is not repeated before new
// DATA flows; nothing else ever checks, so an idle or answered tunnel
// sends no check cell at all.
//
// The check starts Quiet + uniform(0, Quiet/2) after the cell it is
// anchored on, not at a fixed offset; its cells are ordinary fixed-size
// cells that take padding's place on shaped links (docs/DECISIONS.md,
// "D26").
//
// One goroutine (checkLoop) runs the checks of all the node's tunnels
// on the node's clock; the send and receive paths only note cells
// (noteSent, noteHeard), under the check's own small lock. The loop
// sleeps until the next instant some tunnel's check is due to start or
// end; a tunnel with nothing due (idle, settled, or traffic that anchors
// no check) is not watched, and the first cell noted on it wakes the loop
// (watched). So an idle node's check loop never wakes.

const (
	// checkBulkCells DATA cells from the exit within checkBulkSpan before
	// its last one make a download that trigger B watches.
	checkBulkCells = 10
	checkBulkSpan  = time.Second
)

// tunnelCheck is one tunnel's check state. The zero value is ready.
type tunnelCheck struct {
	mu       sync.Mutex
	firstFwd time.Time                 // first DATA sent since the exit was last heard; zero: none
	heard    time.Time                 // last cell from the exit, any command
	data     [checkBulkCells]time.Time // arrivals of the exit's last DATA cells, a ring
	dnext    int
	activity uint64    // DATA cells noted either way
	settled  uint64    // activity when the last check ended: no new check before it changes
	anchor   time.Time // the cell the current due time was drawn for
	due      time.Time // when the check anchored on it starts

	// A check in flight: started when the pings left.
	running  bool
	started  time.Time
	pings    []checkPing // one per hop, in hop order
	answered []bool      // which hops' PONGs came back

	// What the last failed check passed to hopLost, and when.
	lostHop int
	lostAt  time.Time

	// watched: checkLoop has this tunnel in its schedule. When it is
	// not, the next cell noted wakes the loop.
	watched bool
}

// noteLocked is what every noted cell does last: it makes sure the check
// loop looks at the tunnel. Called with c.mu held.
func (t *Tunnel) noteLocked() {
	if c := &t.check; !c.watched {
		c.watched = true
		poke(t.n.wakeups().check)
	}
}

type checkPing struct {
	id uint64
	p  pendingPing
}

// noteSent records a forward cell of the tunnel (tunnel.go, send). The
// clock is read only for the first DATA after the exit was heard.
func (t *Tunnel) noteSent(cmd onion.Command) {
	if cmd != onion.CmdData {
		return
	}
	c := &t.check
	c.mu.Lock()
	c.activity++
	if c.firstFwd.IsZero() {
		c.firstFwd = t.n.opts.Clock.Now()
	}
	t.noteLocked()
	c.mu.Unlock()
}

// noteHeard records a backward cell from hop (0-based) of the tunnel
// (tunnel.go, handleBackward). Only the last hop's cells count: they
// crossed the whole path. t.length, not the path's current length: it
// never changes, and a tunnel being built or repaired is not checked.
func (t *Tunnel) noteHeard(hop int, cmd onion.Command) {
	if hop != t.length-1 {
		return
	}
	now := t.n.opts.Clock.Now()
	c := &t.check
	c.mu.Lock()
	c.heard = now
	c.firstFwd = time.Time{}
	if cmd == onion.CmdData {
		c.activity++
		c.data[c.dnext] = now
		c.dnext = (c.dnext + 1) % checkBulkCells
	}
	t.noteLocked()
	c.mu.Unlock()
}

// checkLoop is the check goroutine: it wakes at the instants a check is
// due to start or end, and when a tunnel it does not watch carries a
// cell, and steps every tunnel's check.
func (n *Node) checkLoop() {
	// The floor between two steps: a due time already passed waits this
	// long, so that the loop never spins.
	floor := n.opts.TunnelQuiet / 64
	wake := n.wakeups().check
	timer := n.opts.Clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var timerC <-chan time.Time // nil: nothing is due
	for {
		select {
		case <-n.stop:
			return
		case <-timerC:
		case <-wake:
		}
		// The time read now, not the timer's: a late wake-up must not
		// shorten the wait of the pings it sends.
		now := n.opts.Clock.Now()
		var next time.Time
		n.mu.Lock()
		tunnels := make([]*Tunnel, 0, len(n.tunnels))
		for t := range n.tunnels {
			tunnels = append(tunnels, t)
		}
		n.mu.Unlock()
		for _, t := range tunnels {
			if at := t.checkStep(now); !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		timer.Stop()
		timerC = nil
		if !next.IsZero() {
			timer.Reset(max(next.Sub(now), floor))
			timerC = timer.C()
		}
	}
}

// checkStep advances t's check at now: it ends a check in flight, or
// starts one that is due. It returns when it next needs to run (zero:
// not before a new cell is noted; the tunnel is then no longer watched).
func (t *Tunnel) checkStep(now time.Time) time.Time {
	t.mu.Lock()
	usable := t.built && !t.repairing && !t.closed
	closed := t.closed
	t.mu.Unlock()
	c := &t.check
	c.mu.Lock()
	if !usable {
		// Never check a tunnel under repair or closed; what was noted
		// before or during a repair says nothing of the new path. One
		// being built or repaired stays watched, at a slow pace, so that
		// its cells do not each wake the loop.
		pings := c.resetLocked()
		c.watched = !closed
		c.mu.Unlock()
		t.forgetPings(pings)
		if closed {
			return time.Time{}
		}
		return now.Add(t.n.opts.TunnelQuiet / 8)
	}
	if c.running {
		return t.endCheckLocked(now) // unlocks c.mu
	}
	if c.activity == c.settled {
		c.watched = false
		c.mu.Unlock()
		return time.Time{}
	}
	// The anchor depends only on the cells noted, not on the time: with
	// none, nothing is due until the next cell, which wakes the loop.
	anchor := c.anchorLocked()
	if anchor.IsZero() {
		c.watched = false
		c.mu.Unlock()
		return time.Time{}
	}
	if !anchor.Equal(c.anchor) {
		q := t.n.opts.TunnelQuiet
		c.anchor = anchor
		c.due = anchor.Add(q + time.Duration(t.n.randUint64()%uint64(q/2+1)))
	}
	if now.Before(c.due) {
		due := c.due
		c.mu.Unlock()
		return due
	}
	c.mu.Unlock()
	return t.startCheck(now)
}

// anchorLocked is the cell a check would be anchored on: the first DATA
// sent since the exit was last heard (trigger A), or the exit's last DATA
// cell when it ended a burst and nothing came after it (trigger B); the
// earlier of the two; zero when neither holds.
func (c *tunnelCheck) anchorLocked() time.Time {
	anchor := c.firstFwd
	last := c.data[(c.dnext+checkBulkCells-1)%checkBulkCells]
	oldest := c.data[c.dnext]
	bulk := !oldest.IsZero() && last.Sub(oldest) <= checkBulkSpan && c.heard.Equal(last)
	if bulk && (anchor.IsZero() || last.Before(anchor)) {
		anchor = last
	}
	return anchor
}

// resetLocked forgets what was noted and any check in flight, whose pings
// it returns for forgetPings.
func (c *tunnelCheck) resetLocked() []checkPing {
	pings := c.pings
	c.firstFwd, c.heard = time.Time{}, time.Time{}
	c.data, c.dnext = [checkBulkCells]time.Time{}, 0
	c.settled = c.activity
	c.anchor, c.due = time.Time{}, time.Time{}
	c.running, c.pings, c.answered = false, nil, nil
	return pings
}

// startCheck pings every hop of t at once, in random order.
func (t *Tunnel) startCheck(now time.Time) time.Time {
	n := t.n
	hops := t.path.Len()
	pings := make([]checkPing, hops)
	t.mu.Lock()
	for i := range pings {
		id := n.randUint64()
		for _, used := t.pings[id]; used; _, used = t.pings[id] {
			id = n.randUint64()
		}
		pings[i] = checkPing{id: id, p: pendingPing{nonce: n.randUint64(), ch: make(chan time.Time, 1)}}
		t.pings[id] = pings[i].p
	}
	t.mu.Unlock()
	c := &t.check
	c.mu.Lock()
	c.running, c.started, c.pings, c.answered = true, now, pings, make([]bool, hops)
	c.mu.Unlock()
	n.stats.inc(EventTunnelChecks)
	for _, i := range n.permutation(hops) {
		// A ping lost at our own link (a full queue) is not answered, as
		// it should not be; a closed tunnel ends the check next step.
		t.send(i, onion.CmdPing, onion.EncodePing(pings[i].id, pings[i].p.nonce))
	}
	return now.Add(n.opts.TunnelCheckTimeout)
}

// endCheckLocked ends the check in flight when the exit answered (the
// tunnel is healthy) or CheckTimeout passed (a hop is lost); it is called
// with c.mu held and releases it.
func (t *Tunnel) endCheckLocked(now time.Time) time.Time {
	c := &t.check
	highest := -1
	for i := range c.pings {
		select {
		case <-c.pings[i].p.ch:
			c.answered[i] = true
		default:
		}
		if c.answered[i] {
			highest = i
		}
	}
	exit := len(c.pings) - 1
	deadline := c.started.Add(t.n.opts.TunnelCheckTimeout)
	if highest != exit && now.Before(deadline) {
		c.mu.Unlock()
		return deadline
	}
	pings := c.pings
	c.running, c.pings, c.answered = false, nil, nil
	c.settled = c.activity
	c.watched = false
	if highest == exit {
		c.mu.Unlock()
		t.forgetPings(pings)
		return time.Time{}
	}
	// Lost: what was noted belongs to the path being replaced.
	c.firstFwd = time.Time{}
	c.data, c.dnext = [checkBulkCells]time.Time{}, 0
	c.lostHop, c.lostAt = highest+1, now
	c.mu.Unlock()
	t.forgetPings(pings)
	t.n.stats.inc(EventTunnelChecksFailed)
	t.n.log.Debug("tunnel check: a hop stopped answering", "hop", highest+2, "hops", len(pings))
	t.hopLost(highest + 1)
	return time.Time{}
}

// forgetPings drops the check's pings from the tunnel's pending pings: a
// late PONG then goes where unknown ones go (TunnelEvents.Pong, which
// ignores it: its ids are not the owner's).
func (t *Tunnel) forgetPings(pings []checkPing) {
	if len(pings) == 0 {
		return
	}
	t.mu.Lock()
	for _, p := range pings {
		delete(t.pings, p.id)
	}
	t.mu.Unlock()
}

// lastCheckLost reports what the last failed check passed to hopLost, and
// when (zero time: no check failed).
func (t *Tunnel) lastCheckLost() (int, time.Time) {
	t.check.mu.Lock()
	defer t.check.mu.Unlock()
	return t.check.lostHop, t.check.lostAt
}

// permutation is a random order of 0..k-1.
func (n *Node) permutation(k int) []int {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Perm(k)
}
