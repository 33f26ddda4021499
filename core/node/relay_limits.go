package node

import (
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// What one peer can make a relay hold or try (PROTOCOL §9, Circuits):
// circuits per link and per node are bounded, and a circuit on which
// forged cells keep arriving is torn down.

// Reasons carried in DESTROY (cell[0], PROTOCOL §4.2). A reason is for
// the neighbour the DESTROY goes to: a relay passing a DESTROY on sends
// destroyNone, except for the two reasons that end the whole tunnel
// (passedOn), so no other reason travels along a path as a mark.
const (
	destroyNone      byte = 0
	destroyProtocol  byte = 1 // the receiver broke the protocol: forged cells, a bad handshake
	destroyResources byte = 2 // circuit limit reached: CREATE refused
	destroyGone      byte = 3 // no such circuit: a cell came for a circuit the sender does not hold
	destroyIdle      byte = 4 // a relay expired the circuit idle: the tunnel ends, no repair
	destroyFinished  byte = 5 // the initiator closed the tunnel (or its node stopped): the tunnel ends
)

// Answers to cells for unknown circuits (DESTROY(GONE)) are bounded per
// link like refusals: one answer per cell at most, and no more than this,
// so a burst of such cells costs us at most this many seals.
const (
	goneReplyRate  = 32 // per second
	goneReplyBurst = 64
)

func destroyReasonText(r byte) string {
	switch r {
	case destroyNone:
		return "closed"
	case destroyProtocol:
		return "protocol violation"
	case destroyResources:
		return "out of resources"
	case destroyGone:
		return "no such circuit"
	case destroyIdle:
		return "idle"
	case destroyFinished:
		return "finished"
	default:
		return "unknown reason"
	}
}

// circuitCount is what each link may still make this node do and what
// it holds open (guarded by Node.mu). Our own tunnels do not count: the
// limits bound what peers make us hold. Only mimic links send CREATE, so
// the map is bounded by the mimics; idle entries are dropped by
// expireCircuits.
type circuitCount struct {
	perLink map[identity.ID]*linkCircuits
	total   int
}

// linkCircuits is one link's share.
type linkCircuits struct {
	open    int    // relay circuits it opened that we hold
	creates bucket // tunnel handshakes it may start (Options.CreateRate)
	replies bucket // refused CREATEs we still answer with DESTROY
	gone    bucket // cells for unknown circuits we still answer with DESTROY(GONE)
}

// Refusals are answered at most this often per link: a DESTROY tells an
// honest sender at once why, but answering every CREATE of a flood would
// double what the flood costs us.
const (
	refusalReplyRate  = 8 // per second
	refusalReplyBurst = 8
)

// bucket is a token bucket on the node's clock.
type bucket struct {
	tokens float64
	at     time.Time
}

// take refills the bucket for the time since its last use and takes a
// token if there is one. A new bucket starts full.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// createVerdict is what admitCreateLocked decided about a CREATE.
type createVerdict int

const (
	createOK      createVerdict = iota // a slot is reserved: do the handshake
	createFull                         // the link or the node holds its limit of circuits
	createTooFast                      // the link's handshake rate is used up
)

// admitCreateLocked decides a CREATE from peer before any key work: the
// circuit limits, then the link's handshake rate. On createOK it reserves
// the circuit's slot (releaseCircuitLocked gives it back). reply reports
// whether a refusal is to be answered.
func (n *Node) admitCreateLocked(peer identity.ID, now time.Time) (v createVerdict, reply bool) {
	cc := &n.circs
	lc := cc.shareLocked(peer)
	switch {
	case cc.total >= n.opts.MaxCircuits || lc.open >= n.opts.MaxCircuitsPerLink:
		v = createFull
	case !lc.creates.take(now, n.opts.CreateRate, 2*n.opts.CreateRate):
		v = createTooFast
	default:
		lc.open++
		cc.total++
		return createOK, false
	}
	return v, lc.replies.take(now, refusalReplyRate, refusalReplyBurst)
}

// shareLocked is peer's share, made on first use.
func (cc *circuitCount) shareLocked(peer identity.ID) *linkCircuits {
	lc := cc.perLink[peer]
	if lc == nil {
		if cc.perLink == nil {
			cc.perLink = map[identity.ID]*linkCircuits{}
		}
		lc = &linkCircuits{}
		cc.perLink[peer] = lc
	}
	return lc
}

// goneReplyLocked reports whether a cell from peer for a circuit we do
// not hold may still be answered (lifecycle.go, answerGone), and takes
// the token if so.
func (n *Node) goneReplyLocked(peer identity.ID, now time.Time) bool {
	return n.circs.shareLocked(peer).gone.take(now, goneReplyRate, goneReplyBurst)
}

// releaseCircuitLocked gives back a slot admitCreateLocked reserved.
func (n *Node) releaseCircuitLocked(peer identity.ID) {
	if lc := n.circs.perLink[peer]; lc != nil && lc.open > 0 {
		lc.open--
		n.circs.total--
	}
}

// forgetIdleLinksLocked drops the share of links that hold no circuit and
// made no CREATE for a minute (their buckets are full again by then).
func (n *Node) forgetIdleLinksLocked(now time.Time) {
	for id, lc := range n.circs.perLink {
		if lc.open == 0 && now.Sub(lc.creates.at) > time.Minute && now.Sub(lc.replies.at) > time.Minute && now.Sub(lc.gone.at) > time.Minute {
			delete(n.circs.perLink, id)
		}
	}
}

// A cell that fails its tag was forged or altered on purpose: every link
// frame is authenticated, so nothing corrupts a cell by accident. A few
// are tolerated per window (cells still in flight when a path changes);
// past the budget the circuit goes, so that forgery tries are not free.
const (
	tagFailBudget = 8
	tagFailWindow = time.Minute
)

// tagBudget counts one circuit's cells that failed their tag. Guarded by
// its owner's lock.
type tagBudget struct {
	fails int
	since time.Time
}

// fail records a failed cell at now and reports true exactly once per
// window: when the failures first exceed the budget.
func (b *tagBudget) fail(now time.Time) bool {
	if now.Sub(b.since) > tagFailWindow {
		b.fails, b.since = 0, now
	}
	b.fails++
	return b.fails == tagFailBudget+1
}

// tagFailed charges a forward cell that failed its tag to relay circuit
// c; past the budget the circuit is torn down both ways. The offending
// side, the previous hop, is told why; the next hop only that the
// circuit is gone.
func (n *Node) tagFailed(c *circuit, now time.Time) {
	c.mu.Lock()
	over := c.tags.fail(now)
	c.mu.Unlock()
	if !over {
		return
	}
	n.stats.inc(DropCircuitTagBudget)
	prev, _ := c.prevSide()
	n.limiter.Warn(n.log, "tag-budget", "tore down a circuit: too many of its cells failed their onion tag (forgery)",
		"peer", prev.peer.Short(), "budget", tagFailBudget)
	n.teardownWith(c, true, true, destroyProtocol, destroyNone)
}
