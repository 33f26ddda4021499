package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/view"
)

// Keep-exit repair (PROTOCOL §9, Repair). When a hop before the exit is
// lost, the initiator keeps the hops before the blamed ones, walks through
// new hops to the same exit and rejoins the exit's circuit there: the exit
// moves the circuit, with its onion state and its exit flow (the handle
// under which the exit service keeps its state, e.g. the NAT mapping of
// every TCP connection through it), to the new previous hop. So
// a connection through the tunnel survives the death of a middle relay.
//
// The rejoin message is ID || B || X_g with X_g derived from the
// circuit's resume key (onion/rejoin.go): the new previous hop carries an
// ordinary EXTEND and sends an ordinary CREATE, and the exit tells the two
// apart only by finding X in its index of circuits. A point is spent by
// its rejoin, so a replay is an ordinary handshake that makes an unrelated
// circuit; no one without the resume key can name a circuit's next point.
//
// Exit side: a last-hop circuit whose previous hop is lost stays, with its
// exit flow, for Options.OrphanGrace (an orphan); replies for it are
// dropped meanwhile. Any last-hop circuit can be rejoined, orphan or not:
// the exit may not know yet that its previous hop died.

// indexRejoin files the new circuit c (entered on key) under its first
// rejoin point: one base-point multiplication per circuit, done after the
// CREATED is sent. Nothing can rejoin c before its initiator has that
// reply, so the index is in time.
func (n *Node) indexRejoin(c *circuit, key circKey) {
	x, err := c.relay.RejoinPoint()
	if err != nil {
		return // cannot happen: the point of a 32-byte scalar
	}
	n.mu.Lock()
	if r, ok := n.routes[key]; ok && r.c == c { // not torn down meanwhile
		n.indexRejoinLocked(c, x)
	}
	n.mu.Unlock()
}

// indexRejoinLocked files c under x, its next rejoin point. Every relay
// circuit is indexed; a rejoin is accepted only while it has no next hop.
func (n *Node) indexRejoinLocked(c *circuit, x [32]byte) {
	if n.rejoins == nil {
		n.rejoins = map[[32]byte]*circuit{}
	}
	n.unindexRejoinLocked(c)
	c.rejoinX = x
	n.rejoins[x] = c
}

func (n *Node) unindexRejoinLocked(c *circuit) {
	if cur, ok := n.rejoins[c.rejoinX]; ok && cur == c {
		delete(n.rejoins, c.rejoinX)
	}
}

// rejoinCreate handles a CREATE (msg = ID || B || X) from l on circuit
// key whose X is the next rejoin point of one of our last-hop circuits:
// the circuit moves to (l, key) and the CREATED carries the rejoin reply.
// It reports false when msg is not such a rejoin: the caller runs the
// ordinary handshake. The caller admitted the CREATE (its slot on l is
// reserved) as for any CREATE, so a rejoin costs the sender what a
// CREATE costs and is refused where a CREATE would be.
func (n *Node) rejoinCreate(l *peerLink, key circKey, msg []byte, now time.Time) bool {
	var x, b [32]byte
	copy(x[:], msg[64:96])
	copy(b[:], msg[32:64])
	n.mu.Lock()
	c := n.rejoins[x]
	n.mu.Unlock()
	if c == nil || identity.ID(msg[:32]) != n.id || !n.onion.server().Has(b) {
		return false
	}
	if !c.isLast() {
		return false
	}
	reply, next, err := c.relay.AcceptRejoin(n.opts.Rand, msg)
	if err != nil {
		return false // another rejoin of it won the race: an ordinary handshake
	}
	n.mu.Lock()
	if cur := n.rejoins[x]; cur != c {
		// Torn down (its orphan grace ran out) while we answered.
		n.releaseCircuitLocked(l.id)
		n.mu.Unlock()
		n.sendDestroy(l, key.id)
		return true
	}
	c.mu.Lock()
	old, oldL := c.prev, c.prevL
	c.prev, c.prevL = key, l
	c.mu.Unlock()
	if r, ok := n.routes[old]; ok && r.c == c {
		delete(n.routes, old)
		n.releaseCircuitLocked(old.peer) // the slot moves to the new link (reserved by the caller)
	}
	n.routes[key] = route{c: c}
	n.indexRejoinLocked(c, next)
	n.mu.Unlock()
	c.orphaned.Store(0)
	c.touch(now)
	n.stats.inc(EventCircuitsRejoined)
	if oldL != nil && old != key && oldL.up() {
		n.sendDestroy(oldL, old.id) // the old previous hop, if alive, lets go
	}
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindCreated
	putCirc(pl, key.id)
	copy(pl[payloadHeader:], reply)
	n.sendPayload(l, p)
	return true
}

// orphan keeps c, a last-hop circuit whose previous hop is lost, for a
// rejoin; it reports false when c is to be torn down instead. Only a
// circuit that holds an exit flow (ExitCircuit.Flow) is kept: the exit
// service's state under that handle (the NAT mapping, the server's TCP
// connection) is what a rejoin saves. Any other circuit
// costs its initiator nothing to rebuild, and keeping it would let a
// CREATE its creator abandoned (answered GONE) linger as a ghost.
func (n *Node) orphan(c *circuit, reason byte) bool {
	if n.opts.OrphanGrace <= 0 || endsTunnel(reason) || c.exitFlow.Load() == 0 {
		return false
	}
	if !c.isLast() {
		return false
	}
	n.mu.Lock()
	indexed := n.rejoins[c.rejoinX] == c
	n.mu.Unlock()
	if !indexed {
		return false
	}
	if c.orphaned.CompareAndSwap(0, n.opts.Clock.Now().UnixNano()) {
		n.stats.inc(EventCircuitsOrphaned)
	}
	return true
}

// expireOrphans tears down orphans not rejoined within OrphanGrace.
func (n *Node) expireOrphans(now time.Time) {
	if n.opts.OrphanGrace <= 0 {
		return
	}
	n.mu.Lock()
	var gone []*circuit
	for _, c := range n.rejoins {
		if at := c.orphaned.Load(); at != 0 && now.Sub(time.Unix(0, at)) >= n.opts.OrphanGrace {
			gone = append(gone, c)
		}
	}
	n.mu.Unlock()
	for _, c := range gone {
		if at := c.orphaned.Load(); at != 0 && c.orphaned.CompareAndSwap(at, 0) {
			n.stats.inc(EventOrphansExpired)
			n.teardown(c, false, true)
		}
	}
}

// Initiator side.

// keepExitRepair starts, in the background, the repair of a lost hop
// (hopLost): blame on it and on the hop before it, keep the hops before
// both, rejoin the exit through new hops. It reports false when no repair
// was started (not built yet, closed, a repair running, no such hop).
func (t *Tunnel) keepExitRepair(lost int) bool {
	t.mu.Lock()
	if !t.built || t.closed || t.repairing || lost < 0 || lost >= len(t.hops) {
		t.mu.Unlock()
		return false
	}
	blame := []identity.ID{t.hops[lost].ID}
	if lost > 0 {
		blame = append(blame, t.hops[lost-1].ID)
	}
	t.mu.Unlock()
	t.startRepairFunc(func(ctx context.Context) error { return t.repairKeepExit(ctx, lost, blame) })
	return true
}

// repairKeepExit repairs the loss of hop lost keeping the exit. When the
// exit itself is lost, no walk reaches it, or the rejoin fails, it falls
// back to protocol v2's repair: the hops before the blamed ones are kept
// and the tunnel regrows to a new exit (its flows are lost then, and
// TunnelEvents.ExitLost says so); past the repair cap, a rebuild on a fresh path.
func (t *Tunnel) repairKeepExit(ctx context.Context, lost int, blame []identity.ID) error {
	keep := max(lost-1, 0)
	capped, cut, err := t.beginRepair(keep, blame)
	if err != nil {
		return err
	}
	defer t.endRepair()
	t.mu.Lock()
	exitLost := lost >= len(t.hops)-1
	t.mu.Unlock()
	if capped {
		keep, cut = 0, false
	} else if !exitLost {
		err := t.rejoinExit(ctx, keep, cut)
		if err == nil {
			t.n.stats.inc(EventTunnelsRejoined)
			t.n.stats.inc(EventTunnelsRepaired)
			t.n.log.Debug("tunnel repaired keeping its exit", "lost_hop", lost+1, "hops", t.length)
			return nil
		}
		if t.isClosed() || ctx.Err() != nil {
			return err
		}
		t.n.log.Debug("keep-exit repair failed; repairing to a new exit", "err", err)
		t.mu.Lock()
		keep, cut = min(keep, len(t.hops)), false // the rejoin may have dropped kept hops that failed
		t.mu.Unlock()
	}
	t.n.stats.inc(EventRejoinFallback)
	return t.repairLoop(ctx, keep, cut)
}

// rejoinExit keeps the first keep hops, sets the exit aside, extends the
// tunnel through new hops (a walk that ends on one of the exit's mimics)
// and rejoins the exit there. A new hop that fails is blamed and the walk
// retried; a rejoin that fails is not (the exit's state is unknown): the
// caller rebuilds.
func (t *Tunnel) rejoinExit(ctx context.Context, keep int, cut bool) (err error) {
	n := t.n
	t.mu.Lock()
	if keep >= len(t.hops)-1 {
		t.mu.Unlock()
		return fmt.Errorf("node: no hop between the %d kept and the exit", keep)
	}
	exit := t.hops[len(t.hops)-1]
	t.mu.Unlock()
	if keep > 0 && !cut {
		hf, err := t.cutAfter(ctx, keep)
		if err != nil {
			return err
		}
		if hf != nil {
			t.blame(hf.blame)
			return hf
		}
	}
	if err := t.path.SetAside(keep); err != nil {
		return err
	}
	t.mu.Lock()
	t.hops, t.aside, t.cutAt = t.hops[:keep], exit, 0
	t.mu.Unlock()
	defer func() {
		if err != nil {
			t.path.DropAside()
			t.mu.Lock()
			t.aside = nil
			t.mu.Unlock()
		}
	}()
	var lastErr error
	for range repairAttempts {
		t.mu.Lock()
		kept := slices.Clone(t.hops)
		t.mu.Unlock()
		prev := n.id
		if len(kept) > 0 {
			prev = kept[len(kept)-1].ID
		}
		more, err := n.walkToExit(prev, kept, t.length-len(kept)-1, exit, t.avoidList())
		if err != nil {
			return err
		}
		var hf *hopFailure
		if len(kept) == 0 {
			hf, err = t.replaceFirst(more[0])
			if err != nil {
				return err
			}
		}
		if hf == nil {
			hf = t.extendAlong(ctx, more)
		}
		if hf == nil {
			return t.rejoinLast(ctx, exit)
		}
		if errors.Is(hf, ErrTunnelClosed) || ctx.Err() != nil {
			return hf
		}
		lastErr = hf
		t.blame(hf.blame)
		// Nothing from the hop that reported the failure on.
		k := min(len(kept), max(hf.pos-1, 0))
		t.path.Truncate(k)
		t.mu.Lock()
		t.hops = t.hops[:min(k, len(t.hops))]
		t.mu.Unlock()
		if k > 0 {
			hf, err := t.cutAfter(ctx, k)
			if err != nil {
				return err
			}
			if hf != nil {
				t.blame(hf.blame)
				return hf
			}
			t.mu.Lock()
			t.cutAt = 0
			t.mu.Unlock()
		}
	}
	return lastErr
}

// rejoinLast sends the rejoin message for the exit set aside through the
// path's last hop and puts the exit back on a verified reply.
func (t *Tunnel) rejoinLast(ctx context.Context, exit *view.Peer) error {
	if p, ok := t.n.view.Get(exit.ID); ok {
		exit = p // its current onion key
	}
	msg, err := t.path.RejoinMessage(exit.ID, exit.Desc.OnionKey)
	if err != nil {
		return err
	}
	reply, err := t.extend(ctx, exit.ID, msg, func() {})
	if err == nil {
		err = t.path.Rejoin(reply)
	}
	if err != nil {
		return fmt.Errorf("node: rejoining the exit %s: %w", exit.ID.Short(), err)
	}
	t.mu.Lock()
	t.hops = append(t.hops, exit)
	t.aside = nil
	t.mu.Unlock()
	return nil
}

// replaceFirst moves the tunnel onto a new circuit on the link to id, its
// new hop 1; the old circuit is destroyed. The path's hops are the
// caller's to reset.
func (t *Tunnel) replaceFirst(id identity.ID) (*hopFailure, error) {
	n := t.n
	first := n.upLink(id)
	if first == nil {
		return &hopFailure{id: id, blame: []identity.ID{id},
			err: fmt.Errorf("node: no link to first hop %s", id.Short())}, nil
	}
	n.mu.Lock()
	key := circKey{id, n.newCircIDLocked(id)}
	n.routes[key] = route{t: t}
	n.mu.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		n.mu.Lock()
		delete(n.routes, key)
		n.mu.Unlock()
		return nil, t.closedErr()
	}
	oldFirst, oldKey := t.first, t.key
	t.first, t.key = first, key
	t.hops = t.hops[:0]
	t.cutAt = 0
	t.mu.Unlock()
	n.mu.Lock()
	if r, ok := n.routes[oldKey]; ok && r.t == t {
		delete(n.routes, oldKey)
	}
	n.mu.Unlock()
	n.sendDestroy(oldFirst, oldKey.id)
	return nil, nil
}

// walkToExit is walkFrom for count new hops the last of which has exit
// among its mimics (so it can extend to it); the exit itself is treated
// as a hop already in the tunnel (its domain and it are not chosen).
func (n *Node) walkToExit(prev identity.ID, kept []*view.Peer, count int, exit *view.Peer, avoid []identity.ID) ([]identity.ID, error) {
	if count < 1 {
		return nil, fmt.Errorf("%w: no new hop to reach the exit through", ErrNoPath)
	}
	return n.walkFromVia(prev, kept, count, nil, exit, avoid)
}

// blame adds ids to the hops the tunnel avoids.
func (t *Tunnel) blame(ids []identity.ID) {
	t.mu.Lock()
	t.blameLocked(ids)
	t.mu.Unlock()
}

// isLast reports whether c ends at this node: no next hop, and no
// extension to one under way. Only a last hop can be rejoined or kept.
func (c *circuit) isLast() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextL == nil && !c.extending
}
