package node

import (
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/onion"
)

// Circuit lifecycle: how a circuit's end reaches everyone who holds a
// part of it, so that none is left holding a ghost (PROTOCOL §4.1, §9
// Circuits; DECISIONS D24).
//
//   - A peer that restarted says so in its link handshake (FRESH): its
//     neighbours end every route on the link at once, as if the link had
//     gone down, instead of keeping circuits the peer no longer knows.
//   - A cell for a circuit the receiver does not hold is answered with
//     DESTROY(GONE) on the same link and circuit ID (bounded per link), so
//     the sender learns the circuit is gone the first time it uses it.
//   - DESTROY(IDLE) and DESTROY(FINISHED) end the whole tunnel: relays pass
//     them on with their reason, and the initiator closes instead of
//     repairing. Every other reason is passed on as none.
//   - Node.Close says DESTROY on every circuit both ways before it goes.

// freshFlag is what our next handshake message to l's peer says: FRESH
// when we hold no established session with it (we just started, or the
// link went down and its routes with it). A rekey of a live link never
// says it. Caller must not hold l.mu.
func (l *peerLink) freshFlag() link.Flags {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return link.FlagFresh
	}
	return 0
}

// peerRestarted handles a handshake message in which l's peer said FRESH:
// it held no session with us when it made the message, so every route we
// hold on the link dates from before and is dead at its end. They end now,
// exactly as if the link had gone down.
//
// One exception keeps a start-up from costing circuits: when both ends
// start at once their initiations cross, and an initiation reordered
// behind the handshake that brought the link up (or a retry of it) would
// still say FRESH after circuits were built on the link. So an initiation
// saying FRESH under the same peer link key as a FRESH handshake acted on
// less than link.HandshakeTimeout before is taken for such a duplicate. A
// restarted peer is never mistaken for one: each process of a node makes
// a new link key (Node.New), so its handshakes are under another key. A
// response is never a duplicate: it answers our pending initiation.
func (n *Node) peerRestarted(l *peerLink, initiation bool, peerKey [32]byte, now time.Time) {
	l.mu.Lock()
	if initiation && peerKey == l.freshKey && !l.freshAt.IsZero() && now.Sub(l.freshAt) < link.HandshakeTimeout {
		l.mu.Unlock()
		return
	}
	l.freshAt, l.freshKey = now, peerKey
	l.mu.Unlock()
	if n.routesLost(l) > 0 {
		n.stats.inc(EventPeerRestarts)
		n.log.Info("peer restarted: ended the circuits on its link", "peer", l.id.Short())
	}
}

// routesLost ends every route on l: its link went down, or its peer
// restarted. It returns how many there were.
func (n *Node) routesLost(l *peerLink) int {
	n.mu.Lock()
	var affected []circKey
	for k := range n.routes {
		if k.peer == l.id {
			affected = append(affected, k)
		}
	}
	n.mu.Unlock()
	for _, k := range affected {
		n.mu.Lock()
		r, ok := n.routes[k]
		n.mu.Unlock()
		switch {
		case !ok:
		case r.t != nil:
			r.t.linkLost()
		case r.fromNext:
			n.nextGone(r.c, k, destroyNone)
		default:
			n.prevLost(r.c, destroyNone)
		}
	}
	return len(affected)
}

// linkLost handles the loss of the tunnel's first link, or of hop 1's
// state (it restarted): a keep-exit repair of hop 0 when the tunnel can
// have one (rejoin.go), else the tunnel ends.
func (t *Tunnel) linkLost() {
	if !t.keepExitRepair(0) {
		t.destroyed()
	}
}

// nextGone handles a relay circuit whose next side (key) is gone: a
// DESTROY came from it with reason, or its link or its peer's state was
// lost (destroyNone). While an EXTEND waits for its CREATED the EXTEND
// fails; a tunnel ended by a relay (IDLE, FINISHED) is torn down toward
// the initiator with that reason, so the initiator closes it; anything
// else is TRUNCATED, so the initiator can repair.
func (n *Node) nextGone(c *circuit, key circKey, reason byte) {
	c.mu.Lock()
	if c.next != key {
		c.mu.Unlock()
		return // truncated or torn down meanwhile
	}
	wasExtending := c.extending
	c.nextL, c.next, c.extending = nil, circKey{}, false
	c.mu.Unlock()
	n.mu.Lock()
	if r, ok := n.routes[key]; ok && r.c == c {
		delete(n.routes, key)
	}
	n.mu.Unlock()
	switch {
	case wasExtending:
		why := onion.ReasonHandshake
		if reason == destroyResources {
			why = onion.ReasonBusy
		}
		n.originate(c, onion.CmdExtendFailed, onion.EncodeExtendFailed(why, "next hop refused: "+destroyReasonText(reason)))
	case endsTunnel(reason):
		n.teardownWith(c, true, false, reason, destroyNone)
	default:
		n.originate(c, onion.CmdTruncated, nil)
	}
}

// endsTunnel reports whether a DESTROY reason ends the whole tunnel (no
// repair, no orphan) and so is passed on along the path.
func endsTunnel(reason byte) bool { return reason == destroyIdle || reason == destroyFinished }

// passedOn is the reason a relay gives the next neighbour when it passes
// a DESTROY with reason on: only the two that end the tunnel travel; any
// other is for the neighbour it was sent to, and a reason that travelled
// would be a mark colluding hops could put on a circuit.
func passedOn(reason byte) byte {
	if endsTunnel(reason) {
		return reason
	}
	return destroyNone
}

// answerGone answers a cell that came on l for circuit ID circID, which we
// do not hold, with DESTROY(GONE): the sender holds a ghost (we restarted,
// expired it, or its DESTROY was lost) and learns it now, the first time
// it uses it. Only the authenticated peer of l can provoke the answer, and
// it learns only whether we hold one of the circuit IDs of its own link,
// which it chose or was given; answers are bounded per link (the rest
// are dropped and counted), so a burst of such cells costs us at most
// goneReplyBurst seals, then goneReplyRate a second. A DESTROY is never
// answered: two nodes that both forgot a circuit do not talk about it.
func (n *Node) answerGone(l *peerLink, circID uint32) {
	n.stats.inc(DropUnknownCircuit)
	if n.hooks.keepGhosts.Load() {
		return
	}
	now := n.opts.Clock.Now()
	n.mu.Lock()
	ok := n.goneReplyLocked(l.id, now)
	n.mu.Unlock()
	if !ok {
		n.stats.inc(DropGoneReplyRate)
		return
	}
	n.stats.inc(EventGoneSent)
	n.sendDestroyReason(l, circID, destroyGone)
}

// closeDrainLimit bounds how long Node.Close waits for its DESTROYs to
// leave.
const closeDrainLimit = 500 * time.Millisecond

// goodbye is Node.Close's first step, while the node still runs: DESTROY
// on every relay circuit both ways (reason none, so the neighbours
// repair, or keep an exit's circuit for a rejoin) and DESTROY(FINISHED) on
// each of our own tunnels (they end), then a wait, at most
// closeDrainLimit, until the frames have left. On a shaped link they go
// out in the link's own slots, never as a burst an observer could count.
func (n *Node) goodbye() {
	n.mu.Lock()
	var circs []*circuit
	var tuns []*Tunnel
	seen := map[*circuit]bool{}
	for _, r := range n.routes {
		switch {
		case r.t != nil:
			tuns = append(tuns, r.t)
		case r.c != nil && !seen[r.c]:
			seen[r.c] = true
			circs = append(circs, r.c)
		}
	}
	n.mu.Unlock()
	for _, t := range tuns {
		t.closeWith(destroyFinished)
	}
	for _, c := range circs {
		n.teardown(c, true, true)
	}
	if k := len(tuns) + len(circs); k > 0 {
		n.stats.add(EventCloseDestroys, uint64(len(tuns)+2*len(circs)))
		n.log.Info("stopping: tore down circuits and tunnels", "circuits", len(circs), "tunnels", len(tuns))
	}
	deadline := n.opts.Clock.Now().Add(closeDrainLimit)
	for !n.drained() && n.opts.Clock.Now().Before(deadline) {
		t := n.opts.Clock.NewTimer(2 * time.Millisecond)
		<-t.C()
	}
}

// drained reports whether nothing waits to be sent: no link queue holds
// a payload, and every frame handed to a writer was written.
func (n *Node) drained() bool {
	if n.writing.Load() != 0 {
		return false
	}
	for _, l := range n.establishedLinks(nil) {
		if len(l.queue) != 0 {
			return false
		}
	}
	return true
}
