package node

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
)

// A relay circuit joins (prev link, prev circuit ID) to an optional
// (next link, next circuit ID). Circuit IDs are per link (Tarzan's flow
// tags): the side that creates a circuit on a link picks its ID, the node
// with the lower ID from the lower half of the space, so the two ends never
// collide.

type circKey struct {
	peer identity.ID
	id   uint32
}

// route is what a (link, circuit ID) pair leads to: either a relay circuit
// (entered from its prev or its next side) or one of our own tunnels.
type route struct {
	c        *circuit
	fromNext bool
	t        *Tunnel
}

type circuit struct {
	relay *onion.Relay
	// prev and prevL change only when the circuit is rejoined (rejoin.go),
	// under both Node.mu and mu: read them under either, or by prevSide.
	prev  circKey
	prevL *peerLink

	mu        sync.Mutex
	next      circKey
	nextL     *peerLink
	extending bool // EXTEND sent on, CREATED not yet back

	tags tagBudget // forward cells that failed their tag (relay_limits.go)

	lastActive atomic.Int64
	exitFlow   atomic.Uint64 // exit flow handle (ExitCircuit.Flow); 0 = none yet

	rejoinX  [32]byte     // its key in Node.rejoins (Node.mu)
	orphaned atomic.Int64 // unix nanos since its previous hop was lost; 0 = it has one (rejoin.go)
}

// prevSide is the circuit's previous hop: its circuit key and link.
func (c *circuit) prevSide() (circKey, *peerLink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prev, c.prevL
}

func (c *circuit) touch(now time.Time) { c.lastActive.Store(now.UnixNano()) }

// newCircIDLocked picks an unused circuit ID on the link to peer.
func (n *Node) newCircIDLocked(peer identity.ID) uint32 {
	var high uint32
	if !less(n.id, peer) {
		high = 1 << 31
	}
	for {
		id := n.randUint32()&(1<<31-1) | high
		if id&(1<<31-1) == 0 {
			continue
		}
		if _, used := n.routes[circKey{peer, id}]; !used {
			return id
		}
	}
}

// handleCreate runs the server side of a tunnel handshake: a new circuit
// whose previous hop is l. The circuit limits and the link's handshake
// rate are checked first (relay_limits.go), so a CREATE over them costs a
// map lookup and at most a DESTROY, no key work.
func (n *Node) handleCreate(l *peerLink, circID uint32, cell []byte) {
	key := circKey{l.id, circID}
	now := n.opts.Clock.Now()
	n.mu.Lock()
	_, exists := n.routes[key]
	verdict, answer := createOK, false
	if !exists {
		verdict, answer = n.admitCreateLocked(l.id, now)
	}
	n.mu.Unlock()
	switch {
	case exists:
		n.stats.inc(DropUnknownCircuit)
		return
	case verdict == createFull:
		n.stats.inc(DropCreateLimit)
		n.limiter.Warn(n.log, "create-limit", "refused a CREATE: circuit limit reached (per link or per node)",
			"peer", l.id.Short(), "per_link", n.opts.MaxCircuitsPerLink, "per_node", n.opts.MaxCircuits)
	case verdict == createTooFast:
		n.stats.inc(DropCreateRate)
		n.limiter.Warn(n.log, "create-rate", "refused a CREATE: the link's handshake rate is used up",
			"peer", l.id.Short(), "per_second", n.opts.CreateRate)
	}
	if verdict != createOK {
		if answer {
			n.sendDestroyReason(l, circID, destroyResources)
		}
		return
	}
	if n.rejoinCreate(l, key, cell[:onion.ClientMsgLen], now) {
		return
	}
	y, err := n.takeEphemeral()
	var reply []byte
	var keys *onion.Keys
	if err == nil {
		reply, keys, err = onion.ServerHandshakeKey(y, n.id, n.onion.server(), cell[:onion.ClientMsgLen])
		if err != nil {
			n.returnEphemeral(y) // no reply was made: y was never revealed
		}
	}
	if err != nil {
		n.mu.Lock()
		n.releaseCircuitLocked(l.id)
		n.mu.Unlock()
		n.stats.inc(DropExtendFailed)
		n.limiter.Debug(n.log, "create", "tunnel handshake failed", "peer", l.id.Short(), "err", err)
		n.sendDestroyReason(l, circID, destroyProtocol)
		return
	}
	c := &circuit{relay: onion.NewRelay(keys), prev: key, prevL: l}
	c.touch(now)
	n.mu.Lock()
	if _, dup := n.routes[key]; dup {
		// The same CREATE arrived over two transports at once.
		n.releaseCircuitLocked(l.id)
		n.mu.Unlock()
		n.stats.inc(DropUnknownCircuit)
		return
	}
	n.routes[key] = route{c: c}
	n.mu.Unlock()
	n.stats.inc(EventCircuits)
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindCreated
	putCirc(pl, circID)
	copy(pl[payloadHeader:], reply)
	n.sendPayload(l, p)
	n.afterSend()
	n.indexRejoin(c, key) // after the reply: it costs the CREATE no latency
	n.refillEphemeral()   // likewise: the next CREATE's key (handshake_keys.go)
}

// handleCreated completes a CREATE we sent: for our own tunnel's first
// hop, or for an EXTEND we are carrying out as a relay.
func (n *Node) handleCreated(l *peerLink, circID uint32, cell []byte) {
	n.mu.Lock()
	r, ok := n.routes[circKey{l.id, circID}]
	n.mu.Unlock()
	switch {
	case ok && r.t != nil:
		r.t.deliverCreated(cell[:onion.ServerMsgLen])
	case ok && r.c != nil && r.fromNext:
		c := r.c
		c.mu.Lock()
		wasExtending := c.extending
		c.extending = false
		c.mu.Unlock()
		if !wasExtending {
			n.stats.inc(DropUnknownCircuit)
			return
		}
		n.originate(c, onion.CmdExtended, cell[:onion.ServerMsgLen])
	case !ok:
		n.answerGone(l, circID) // a CREATE we gave up on: the circuit it made is a ghost
	default:
		n.stats.inc(DropUnknownCircuit)
	}
}

// handleForward processes a forward relay cell: the link payload in buf.
// A cell for the next hop goes on in buf itself (taken).
func (n *Node) handleForward(l *peerLink, circID uint32, buf *frameBuf) (taken bool) {
	pl := buf.payload()
	n.mu.Lock()
	r, ok := n.routes[circKey{l.id, circID}]
	n.mu.Unlock()
	switch {
	case !ok:
		n.answerGone(l, circID)
		return false
	case r.c == nil || r.fromNext:
		n.stats.inc(DropUnknownCircuit)
		return false
	}
	c := r.c
	now := n.opts.Clock.Now()
	cell := pl[payloadHeader:]
	local, payload, err := c.relay.Forward(cell)
	if err != nil {
		n.countCellErr(err)
		if errors.Is(err, onion.ErrTagMismatch) {
			n.tagFailed(c, now)
		}
		return false
	}
	c.touch(now)
	if local {
		n.relayCommand(c, payload)
		return false
	}
	c.mu.Lock()
	nextL, next := c.nextL, c.next
	c.mu.Unlock()
	if nextL == nil {
		n.stats.inc(DropCellNotForUs)
		return false
	}
	if h := n.hooks.relayForward; h != nil {
		h(cell)
	}
	n.stats.inc(EventCellsRelayed)
	n.relayCell(nextL, kindRelayFwd, next.id, buf)
	return true
}

// relayCell sends the cell in buf (its layer already changed in place) on
// to the next link under a link header built from scratch, in place:
// nothing of the header it arrived with (reserved bytes, the previous
// link's circuit ID) passes through a relay, so colluding hops around an
// honest one cannot mark a circuit by it (PROTOCOL §4.2). It takes buf.
func (n *Node) relayCell(l *peerLink, kind byte, circID uint32, buf *frameBuf) {
	out := buf.payload()
	clear(out[:payloadHeader])
	out[0] = kind
	putCirc(out, circID)
	n.sendPayload(l, buf)
}

// handleBackward adds our layer to a backward cell (the link payload in
// buf) and passes it toward the initiator in buf itself (taken), or opens
// it if the tunnel is ours.
func (n *Node) handleBackward(l *peerLink, circID uint32, buf *frameBuf) (taken bool) {
	pl := buf.payload()
	n.mu.Lock()
	r, ok := n.routes[circKey{l.id, circID}]
	n.mu.Unlock()
	switch {
	case ok && r.t != nil:
		r.t.handleBackward(pl[payloadHeader:])
		return false
	case !ok:
		n.answerGone(l, circID)
		return false
	case r.c == nil || !r.fromNext:
		n.stats.inc(DropUnknownCircuit)
		return false
	}
	c := r.c
	cell := pl[payloadHeader:]
	if err := c.relay.Backward(cell); err != nil {
		n.countCellErr(err)
		return false
	}
	c.touch(n.opts.Clock.Now())
	n.stats.inc(EventCellsRelayed)
	prev, prevL := c.prevSide()
	n.relayCell(prevL, kindRelayBwd, prev.id, buf)
	return true
}

func (n *Node) countCellErr(err error) {
	switch {
	case errors.Is(err, onion.ErrReplay):
		n.stats.inc(DropCellReplay)
	case errors.Is(err, onion.ErrTagMismatch):
		n.stats.inc(DropCellTampered)
		n.limiter.Warn(n.log, "tampered", "dropped a cell modified on its way (onion tag mismatch)")
	default:
		n.stats.inc(DropRelayMalformed)
	}
}

// originate sends a backward relay cell from this hop toward the initiator.
func (n *Node) originate(c *circuit, cmd onion.Command, data []byte) {
	if c.orphaned.Load() != 0 {
		n.stats.inc(DropOrphanReply) // no previous hop until a rejoin
		return
	}
	prev, prevL := c.prevSide()
	var rp [onion.PayloadSize]byte
	body, err := onion.EncodeRelay(rp[:], cmd, data)
	if err != nil {
		return
	}
	p := getBuf()
	pl := p.payload()
	clear(pl[:payloadHeader])
	pl[0] = kindRelayBwd
	putCirc(pl, prev.id)
	if err := c.relay.Originate(pl[payloadHeader:], body, n.pad); err != nil {
		putBuf(p)
		return
	}
	n.sendPayload(prevL, p)
}

// TryReply is Reply if the circuit's previous link can take the cell
// without waiting (its writer holds only a few batches); otherwise it
// sends nothing and reports false (see Tunnel.TrySendData).
func (e ExitCircuit) TryReply(pkt []byte) bool {
	if !e.HasRoom() {
		return false
	}
	e.Reply(pkt)
	return true
}

// HasRoom reports whether Reply would take a cell without waiting (see
// TryReply).
func (e ExitCircuit) HasRoom() bool {
	if e.c.orphaned.Load() == 0 {
		if _, prevL := e.c.prevSide(); prevL != nil && !e.n.hasRoom(prevL) {
			return false
		}
	}
	return true
}

// AwaitRoom waits until the circuit's previous link can take a cell
// without waiting, or the node stops (see Tunnel.AwaitRoom).
func (e ExitCircuit) AwaitRoom() {
	if _, prevL := e.c.prevSide(); prevL != nil && e.c.orphaned.Load() == 0 {
		e.n.awaitRoom(prevL)
	}
}

// relayCommand executes a relay command addressed to this hop.
func (n *Node) relayCommand(c *circuit, payload []byte) {
	cmd, data, err := onion.DecodeRelay(payload)
	if err != nil {
		n.stats.inc(DropRelayMalformed)
		return
	}
	if tap := n.opts.Tap; tap != nil && tap.Delivered != nil {
		prev, _ := c.prevSide()
		tap.Delivered(prev.peer, prev.id, byte(cmd), data)
	}
	switch cmd {
	case onion.CmdPing:
		n.originate(c, onion.CmdPong, data)
	case onion.CmdExtend:
		n.extend(c, data)
	case onion.CmdTruncate:
		n.truncate(c)
		n.originate(c, onion.CmdTruncated, nil)
	case onion.CmdEnd:
		n.teardown(c, true, true)
	case onion.CmdDrop:
	case onion.CmdData:
		n.exitData(c, data)
	default:
		n.stats.inc(DropRelayMalformed)
	}
}

// Reasons carried in EXTEND_FAILED.
const (
	extendReasonNotMimic byte = 1
	extendReasonNoLink   byte = 2
	extendReasonBusy     byte = 3
	extendReasonBadMsg   byte = 4
)

// extend carries out an EXTEND: only to one of our mimics, over the link
// we keep to it. Anything else is refused and counted.
func (n *Node) extend(c *circuit, data []byte) {
	next, msg, err := onion.DecodeExtend(data)
	if err != nil {
		n.stats.inc(DropRelayMalformed)
		n.originate(c, onion.CmdExtendFailed, []byte{extendReasonBadMsg})
		return
	}
	nextID := identity.ID(next)
	if h := n.hooks.extendTo.Load(); h != nil && !(*h)(nextID) {
		n.originate(c, onion.CmdExtendFailed, append([]byte{extendReasonNoLink}, "no link to that mimic"...))
		return
	}
	if nextID == n.id || !n.isMimic(nextID) {
		n.stats.inc(DropExtendNonMimic)
		n.limiter.Warn(n.log, "extend-nonmimic", "refused to extend a tunnel to a non-mimic", "to", nextID.Short())
		n.originate(c, onion.CmdExtendFailed, append([]byte{extendReasonNotMimic}, "not a mimic"...))
		return
	}
	nl := n.upLink(nextID)
	if nl == nil {
		n.stats.inc(DropExtendFailed)
		n.originate(c, onion.CmdExtendFailed, append([]byte{extendReasonNoLink}, "no link to that mimic"...))
		return
	}
	c.mu.Lock()
	if c.nextL != nil || c.extending {
		c.mu.Unlock()
		n.stats.inc(DropExtendFailed)
		n.originate(c, onion.CmdExtendFailed, append([]byte{extendReasonBusy}, "circuit already extended"...))
		return
	}
	n.mu.Lock()
	id := n.newCircIDLocked(nextID)
	key := circKey{nextID, id}
	n.routes[key] = route{c: c, fromNext: true}
	n.mu.Unlock()
	c.next, c.nextL, c.extending = key, nl, true
	c.mu.Unlock()
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindCreate
	putCirc(pl, id)
	copy(pl[payloadHeader:], msg)
	n.sendPayload(nl, p)
}

// truncate drops the part of the circuit beyond this hop.
func (n *Node) truncate(c *circuit) {
	c.mu.Lock()
	nextL, next := c.nextL, c.next
	c.nextL, c.next, c.extending = nil, circKey{}, false
	c.mu.Unlock()
	if nextL == nil {
		return
	}
	n.mu.Lock()
	delete(n.routes, next)
	n.mu.Unlock()
	n.sendDestroy(nextL, next.id)
}

// teardown removes a circuit and tells its neighbours.
func (n *Node) teardown(c *circuit, toPrev, toNext bool) {
	n.teardownWith(c, toPrev, toNext, destroyNone, destroyNone)
}

// teardownWith is teardown with the reasons the previous and the next hop
// are given. It is safe to call twice: the circuit's slot is released
// once.
func (n *Node) teardownWith(c *circuit, toPrev, toNext bool, prevReason, nextReason byte) {
	n.closeExitFlow(c)
	c.mu.Lock()
	nextL, next := c.nextL, c.next
	c.nextL = nil
	c.mu.Unlock()
	n.mu.Lock()
	prev, prevL := c.prev, c.prevL
	if r, ok := n.routes[prev]; ok && r.c == c {
		delete(n.routes, prev)
		n.releaseCircuitLocked(prev.peer)
	}
	if nextL != nil {
		delete(n.routes, next)
	}
	n.unindexRejoinLocked(c)
	n.mu.Unlock()
	if toPrev {
		n.sendDestroyReason(prevL, prev.id, prevReason)
	}
	if toNext && nextL != nil {
		n.sendDestroyReason(nextL, next.id, nextReason)
	}
}

func (n *Node) sendDestroy(l *peerLink, circID uint32) {
	n.sendDestroyReason(l, circID, destroyNone)
}

// sendDestroyReason sends DESTROY with reason in cell[0].
func (n *Node) sendDestroyReason(l *peerLink, circID uint32, reason byte) {
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindDestroy
	putCirc(pl, circID)
	pl[payloadHeader] = reason
	n.sendPayload(l, p)
}

// handleDestroy tears down whatever the circuit ID leads to and passes the
// DESTROY on to the other side: with its reason if that ends the tunnel
// (IDLE, FINISHED), else as none (lifecycle.go, passedOn). A DESTROY for
// a circuit we do not hold is never answered.
func (n *Node) handleDestroy(l *peerLink, circID uint32, reason byte) {
	key := circKey{l.id, circID}
	n.mu.Lock()
	r, ok := n.routes[key]
	n.mu.Unlock()
	switch {
	case !ok:
	case r.t != nil:
		r.t.destroyedBy(reason)
	case r.fromNext:
		// The rest of the path is gone; unless the tunnel ended, keep our
		// part so the initiator can repair by extending again, and tell
		// it: a CREATE refused fails the EXTEND at once, anything later
		// is a TRUNCATED.
		n.nextGone(r.c, key, reason)
	case endsTunnel(reason):
		n.teardownWith(r.c, false, true, destroyNone, reason)
	default:
		n.prevLost(r.c, reason)
	}
}

// prevLost handles a circuit whose previous side is gone: a DESTROY came
// from it (with reason), or the link to it went down (destroyNone). The
// circuit is torn down toward its next hop.
func (n *Node) prevLost(c *circuit, reason byte) {
	if n.orphan(c, reason) {
		return // kept for a rejoin (rejoin.go)
	}
	n.teardown(c, false, true)
}

// linkDown handles a link that went away: circuits through it lose that
// side.
func (n *Node) linkDown(l *peerLink) { n.routesLost(l) }

// expireCircuits tears down relay circuits idle for too long, with
// DESTROY(IDLE) both ways.
func (n *Node) expireCircuits(now time.Time) {
	n.mu.Lock()
	var idle []*circuit
	for k, r := range n.routes {
		if r.c != nil && !r.fromNext && r.c.prev == k &&
			now.Sub(time.Unix(0, r.c.lastActive.Load())) > n.opts.TunnelIdleTimeout {
			idle = append(idle, r.c)
		}
	}
	n.forgetIdleLinksLocked(now)
	n.mu.Unlock()
	for _, c := range idle {
		// The tunnel ends: both neighbours pass IDLE on, and the
		// initiator closes it rather than repairing what it no longer
		// uses (a repair would only refresh the idle circuit).
		n.stats.inc(EventCircuitsExpired)
		n.teardownWith(c, true, true, destroyIdle, destroyIdle)
	}
}
