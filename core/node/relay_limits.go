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
// destroyNone, so no reason travels along a path as a mark.
const (
	destroyNone      byte = 0
	destroyProtocol  byte = 1 // the receiver broke the protocol: forged cells, a bad handshake
	destroyResources byte = 2 // circuit limit reached: CREATE refused
)

func destroyReasonText(r byte) string {
	switch r {
	case destroyNone:
		return "closed"
	case destroyProtocol:
		return "protocol violation"
	case destroyResources:
		return "out of resources"
	default:
		return "unknown reason"
	}
}

// circuitCount is how many relay circuits each link opened at this node
// and all links together (guarded by Node.mu). Our own tunnels do not
// count: the limits bound what peers make us hold.
type circuitCount struct {
	perLink map[identity.ID]int
	total   int
}

// reserveCircuitLocked takes a slot for a circuit peer opens, or reports
// false when the link or the node is at its limit.
func (n *Node) reserveCircuitLocked(peer identity.ID) bool {
	cc := &n.circs
	if cc.total >= n.opts.MaxCircuits || cc.perLink[peer] >= n.opts.MaxCircuitsPerLink {
		return false
	}
	if cc.perLink == nil {
		cc.perLink = map[identity.ID]int{}
	}
	cc.perLink[peer]++
	cc.total++
	return true
}

// releaseCircuitLocked gives back a slot reserveCircuitLocked took.
func (n *Node) releaseCircuitLocked(peer identity.ID) {
	cc := &n.circs
	if k := cc.perLink[peer]; k <= 1 {
		delete(cc.perLink, peer) // the map holds only links with circuits
	} else {
		cc.perLink[peer] = k - 1
	}
	cc.total--
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
	n.limiter.warn(n.log, "tag-budget", "tore down a circuit: too many of its cells failed their onion tag (forgery)",
		"peer", c.prev.peer.Short(), "budget", tagFailBudget)
	n.teardownWith(c, true, true, destroyProtocol)
}
