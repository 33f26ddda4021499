package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/view"
)

// Tunnel is a circuit this node initiated: hop 1 among our mimics, hop
// j+1 among hop j's mimics, built hop by hop through the partial tunnel
// (telescoping).
type Tunnel struct {
	n      *Node
	path   *onion.Path
	length int // hops the tunnel was built with; repairs restore it
	setup  time.Duration

	last     func(*view.Peer) bool // constraint on the last hop, kept for repairs
	avoid    []identity.ID         // members no hop may be, kept for repairs
	lastUsed atomic.Int64          // unix nanos
	events   TunnelEvents          // its owner's handlers (api.go); set before the build

	mu       sync.Mutex
	first    *peerLink // the link to hop 1 and our circuit ID on it; a
	key      circKey   // rebuild on a fresh path replaces both (repair.go)
	hops     []*view.Peer
	aside    *view.Peer // the exit while a keep-exit repair replaces the hops before it (rejoin.go)
	created  chan []byte
	extended chan extendResult
	pings    map[uint64]pendingPing
	closed   bool
	done     chan struct{}
	why      byte      // reason of the DESTROY from hop 1 that closed the tunnel
	tags     tagBudget // backward cells that failed their tag

	truncated chan struct{} // a TRUNCATED arrived
	built     bool          // fully built once: an unsolicited TRUNCATED starts a repair
	repairing bool
	cutAt     int           // hops left after an unsolicited TRUNCATED; 0 = none
	blamed    []identity.ID // hops failures were blamed on (repair.go)
	blamedAt  []time.Time   // when each was (last) blamed
	repairs   []time.Time   // when the recent repairs started (repair.go)

	check tunnelCheck // end-to-end liveness (tunnel_check.go)

	traffic tunnelTraffic // number, age and DATA counts (tunnelstats.go)
}

type extendResult struct {
	reply []byte
	err   error
}

// HopInfo describes one hop for display.
type HopInfo struct {
	ID     identity.ID
	Addr   netip.AddrPort
	Domain netip.Prefix
}

// Errors callers branch on.
var (
	ErrNoPath       = errors.New("node: no path satisfies the constraints")
	ErrTunnelClosed = errors.New("node: tunnel closed")
	ErrExtendFailed = errors.New("node: extend refused")
)

// BuildTunnel selects a path of the given length and builds a tunnel
// along it, retrying with another path when a hop fails.
func (n *Node) BuildTunnel(ctx context.Context, hops int) (*Tunnel, error) {
	start := n.opts.Clock.Now()
	t, err := n.buildTunnel(ctx, hops, nil, nil, nil)
	return n.noteBuild(start, t, err) // linkstats.go
}

// buildTunnel builds a tunnel whose last hop satisfies last (nil: any)
// and none of whose hops is in avoid, with the handlers ev (nil: none).
func (n *Node) buildTunnel(ctx context.Context, hops int, last func(*view.Peer) bool, avoid []identity.ID, ev *TunnelEvents) (*Tunnel, error) {
	if hops < 1 || hops > onion.MaxHops {
		return nil, fmt.Errorf("node: tunnel length %d out of range 1..%d", hops, onion.MaxHops)
	}
	var lastErr error
	// Later attempts also avoid every hop an earlier one could not reach:
	// a relay whose link to it is half-open (closed at the far end, not
	// yet timed out here) lets every EXTEND to it time out, and in a small
	// network the walk would otherwise pick it again and again.
	walkAvoid := avoid
	for attempt := 0; attempt < 5; attempt++ {
		path, err := n.walkFrom(n.id, nil, hops, last, walkAvoid)
		if err != nil {
			if lastErr != nil {
				// Only the hops that failed are left out: report what
				// failed, not a lack of paths a caller would relax.
				return nil, lastErr
			}
			return nil, err
		}
		t, err := n.buildTunnelPath(ctx, path, ev, last, avoid)
		if err == nil {
			return t, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		if hf := (*hopFailure)(nil); errors.As(err, &hf) {
			walkAvoid = append(slices.Clip(walkAvoid), hf.blame...)
		}
	}
	return nil, lastErr
}

// hopFailure is a tunnel build that failed at one hop: the hop could not
// be reached, or its handshake failed. It is blamed on that hop and on
// the hop that was to reach it (repair.go says why).
type hopFailure struct {
	id    identity.ID   // the hop being added
	pos   int           // its position (0-based)
	blame []identity.ID // id, the hop before it and, if hop 1 closed the tunnel, hop 1
	err   error
}

func (e *hopFailure) Error() string { return e.err.Error() }
func (e *hopFailure) Unwrap() error { return e.err }

// SelectPath chooses hops: the first uniformly over the domains of the
// mimics we chose, each next one uniformly over the domains of the mimics
// the previous hop chose, no two hops (nor us) in one top-level domain,
// every hop admitted. Only when no such walk is found does it walk the
// symmetric mimic sets (which include the members that chose a hop).
//
// Why the chosen mimics: a member's own choices are uniform over domains,
// but the members that chose it are not. An adversary with many nodes in
// one /16 has each of them choose honest members, so an honest member's
// symmetric set holds about k adversary nodes, all in one domain, beside
// about 2k honest ones; a walk over symmetric sets meets the adversary at
// the first hop about once in 2k+1 paths (measured 8.5% with k = 6,
// docs/DECISIONS.md D15) instead of once per domain in the view.
//
// Following a hop's own choices is safe because they are not its own to
// make: which domains a member chooses depends only on its /16 (package
// mimic), so a colluder cannot grind IDs until all it chose are
// colluders and keep every path that reaches it on colluders.
func (n *Node) SelectPath(hops int) ([]identity.ID, error) {
	return n.selectPath(hops, nil)
}

func (n *Node) selectPath(hops int, last func(*view.Peer) bool) ([]identity.ID, error) {
	return n.walkFrom(n.id, nil, hops, last, nil)
}

// walkFrom extends a walk that has reached prev through kept (the hops
// already in the tunnel) by count more hops, none of them in avoid,
// retrying random walks until one ends on a hop that satisfies last: the
// mimic topology decides which exits a walk can reach.
func (n *Node) walkFrom(prev identity.ID, kept []*view.Peer, count int, last func(*view.Peer) bool, avoid []identity.ID) ([]identity.ID, error) {
	return n.walkFromVia(prev, kept, count, last, nil, avoid)
}

// walkFromVia is walkFrom; a non-nil exit is a hop the walk must be able
// to reach after its last new hop (rejoin.go).
func (n *Node) walkFromVia(prev identity.ID, kept []*view.Peer, count int, last func(*view.Peer) bool, exit *view.Peer, avoid []identity.ID) ([]identity.ID, error) {
	var err error
	for _, directed := range []bool{true, false} {
		for attempt := 0; attempt < 32; attempt++ {
			var path []identity.ID
			if path, err = n.walkOnce(prev, kept, count, last, exit, avoid, directed); err == nil {
				return path, nil
			}
		}
	}
	return nil, err
}

// walkOnce is one random walk (mimic.Table.Walk): over the mimics each
// hop chose (directed) or over its symmetric mimic sets. A non-nil exit
// counts as a hop already in the tunnel, and the walk's last hop must be
// one of its mimics.
func (n *Node) walkOnce(prev identity.ID, kept []*view.Peer, count int, last func(*view.Peer) bool, exit *view.Peer, avoid []identity.ID, directed bool) ([]identity.ID, error) {
	table := n.mimicTable()
	used := map[netip.Prefix]bool{domain.Top(n.bound.Addr()): true}
	in := map[[32]byte]bool{n.id: true}
	for _, id := range avoid {
		in[id] = true // a member already in the walk is never chosen again
	}
	for _, p := range kept {
		used[p.Top()] = true
		in[p.ID] = true
	}
	if exit != nil {
		used[exit.Top()] = true
		in[exit.ID] = true
	}
	eligible := func(id [32]byte, pos int) bool {
		p, ok := n.view.Get(identity.ID(id))
		switch {
		case !ok:
			return false
		case len(kept)+pos == 0 && n.upLink(p.ID) == nil:
			return false // the first hop must be a live link of ours
		case pos == count-1 && last != nil && !last(p):
			return false
		case pos == count-1 && exit != nil && !table.AreMimics(p.ID, exit.ID):
			return false // it could not extend to the exit
		}
		return true
	}
	hops, failed := table.Walk(prev, count, directed, used, in, eligible, n.randIntN)
	if failed >= 0 {
		return nil, fmt.Errorf("%w: no eligible hop %d (view has %d peers)", ErrNoPath, len(kept)+failed+1, n.view.Len())
	}
	path := make([]identity.ID, len(hops))
	for i, h := range hops {
		path[i] = identity.ID(h)
	}
	return path, nil
}

// BuildTunnelPath builds a tunnel along an explicit path. Every relay still
// enforces its own rules (it extends only to its mimics).
func (n *Node) BuildTunnelPath(ctx context.Context, path []identity.ID) (*Tunnel, error) {
	start := n.opts.Clock.Now()
	t, err := n.buildTunnelPath(ctx, path, nil, nil, nil)
	return n.noteBuild(start, t, err) // linkstats.go
}

// buildTunnelPath builds a tunnel along path. last and avoid are the
// constraints its repairs keep: they are set before the tunnel is
// registered, since a TRUNCATED can start a repair that reads them as
// soon as its first hop answers.
func (n *Node) buildTunnelPath(ctx context.Context, path []identity.ID, ev *TunnelEvents, last func(*view.Peer) bool, avoid []identity.ID) (*Tunnel, error) {
	if len(path) == 0 || len(path) > onion.MaxHops {
		return nil, fmt.Errorf("node: tunnel length %d out of range 1..%d", len(path), onion.MaxHops)
	}
	if n.stopped() {
		return nil, ErrStopped
	}
	start := n.opts.Clock.Now()
	first := n.upLink(path[0])
	if first == nil {
		return nil, fmt.Errorf("node: no link to first hop %s", path[0].Short())
	}
	t := &Tunnel{
		n: n, first: first, path: onion.NewPath(), length: len(path),
		created:   make(chan []byte, 1),
		extended:  make(chan extendResult, 1),
		pings:     map[uint64]pendingPing{},
		done:      make(chan struct{}),
		truncated: make(chan struct{}, 1),
		last:      last,
		avoid:     avoid,
	}
	if ev != nil {
		t.events = *ev
	}
	n.mu.Lock()
	t.key = circKey{path[0], n.newCircIDLocked(path[0])}
	n.routes[t.key] = route{t: t}
	n.tunnels[t] = struct{}{}
	n.mu.Unlock()

	if hf := t.extendAlong(ctx, path); hf != nil {
		t.Close()
		return nil, hf
	}
	t.setup = n.opts.Clock.Now().Sub(start)
	t.touch()
	t.mu.Lock()
	t.built = true
	t.mu.Unlock()
	n.log.Debug("tunnel built", "hops", len(path), "setup", t.setup)
	return t, nil
}

// extendAlong extends the tunnel through ids, one after the other, and
// stops at the first failure.
//
// Each hop's handshake message is made while the previous hop's reply is
// on its way (ahead), and the spare ephemeral key for the next handshake
// after the last message left: of the client's three X25519 scalar
// multiplications per hop only Finish's stays between a reply's arrival
// and the next message (handshake_keys.go).
func (t *Tunnel) extendAlong(ctx context.Context, ids []identity.ID) *hopFailure {
	if len(ids) == 0 {
		return nil
	}
	next := t.startHop(ids[0], t.path.Len())
	for k, id := range ids {
		pos := t.path.Len()
		cur := next
		ahead := t.n.refillEphemeral
		if k+1 < len(ids) {
			ahead = func() { next = t.startHop(ids[k+1], pos+1) }
		}
		err := t.extendTo(ctx, id, cur, ahead)
		if err == nil {
			continue
		}
		hf := &hopFailure{id: id, pos: pos, blame: []identity.ID{id}, err: err}
		t.mu.Lock()
		if pos > 0 && pos <= len(t.hops) {
			hf.blame = append(hf.blame, t.hops[pos-1].ID)
			if errors.Is(err, ErrTunnelClosed) && pos > 1 {
				// Only hop 1 can close the tunnel under us (DESTROY).
				hf.blame = append(hf.blame, t.hops[0].ID)
			}
		}
		t.mu.Unlock()
		return hf
	}
	return nil
}

// circ is the link to hop 1 and our circuit ID on it.
func (t *Tunnel) circ() (*peerLink, circKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first, t.key
}

// circID is our circuit ID on the link to hop 1.
func (t *Tunnel) circID() uint32 {
	_, k := t.circ()
	return k.id
}

// closedErr says why the tunnel closed: ErrTunnelClosed, with hop 1's
// reason when its DESTROY gave one.
func (t *Tunnel) closedErr() error {
	t.mu.Lock()
	why := t.why
	t.mu.Unlock()
	if why == destroyNone {
		return ErrTunnelClosed
	}
	return fmt.Errorf("%w: hop 1 destroyed the circuit (%s)", ErrTunnelClosed, destroyReasonText(why))
}

// hopStart is one hop's handshake, made before the hop's turn.
type hopStart struct {
	p   *view.Peer
	hs  *onion.ClientHandshake
	msg []byte
	err error
}

// startHop makes the handshake for id as hop i+1 (0-based i).
func (t *Tunnel) startHop(id identity.ID, i int) hopStart {
	n := t.n
	p, ok := n.view.Get(id)
	if !ok {
		return hopStart{err: fmt.Errorf("node: hop %d (%s) is not in our view", i+1, id.Short())}
	}
	x, err := n.takeEphemeral()
	if err != nil {
		return hopStart{err: err}
	}
	hs, msg, err := onion.NewClientHandshakeKey(x, id, p.Desc.OnionKey)
	if err != nil {
		n.returnEphemeral(x) // never sent
		return hopStart{err: err}
	}
	return hopStart{p: p, hs: hs, msg: msg}
}

// extendTo adds one hop: CREATE for the first, EXTEND through the partial
// tunnel for the others (telescoping), with the handshake h made for it.
// ahead runs once the message left, while its reply is on the way.
func (t *Tunnel) extendTo(ctx context.Context, id identity.ID, h hopStart, ahead func()) error {
	i := t.path.Len()
	if h.err != nil {
		return h.err
	}
	var reply []byte
	var err error
	if i == 0 {
		reply, err = t.create(ctx, h.msg, ahead)
	} else {
		reply, err = t.extend(ctx, id, h.msg, ahead)
	}
	if err != nil {
		return fmt.Errorf("node: building hop %d (%s): %w", i+1, id.Short(), err)
	}
	keys, err := h.hs.Finish(reply)
	if err != nil {
		return fmt.Errorf("node: hop %d (%s) handshake: %w", i+1, id.Short(), err)
	}
	if err := t.path.AddHop(keys); err != nil {
		return err
	}
	t.mu.Lock()
	t.hops = append(t.hops, h.p)
	t.mu.Unlock()
	return nil
}

const stepTimeout = 5 * time.Second

func (t *Tunnel) create(ctx context.Context, msg []byte, ahead func()) ([]byte, error) {
	first, key := t.circ()
	select {
	case <-t.created: // a late CREATED for a circuit replaced since
	default:
	}
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindCreate
	putCirc(pl, key.id)
	copy(pl[payloadHeader:], msg)
	if err := t.n.sendPayload(first, p); err != nil {
		return nil, err
	}
	t.n.afterSend()
	ahead()
	timer := t.n.opts.Clock.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case r := <-t.created:
		return r, nil
	case <-t.done:
		return nil, t.closedErr()
	case <-timer.C():
		return nil, errors.New("timed out waiting for CREATED")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Tunnel) extend(ctx context.Context, next identity.ID, msg []byte, ahead func()) ([]byte, error) {
	last := t.path.Len() - 1
	if err := t.send(last, onion.CmdExtend, onion.EncodeExtend(next, msg)); err != nil {
		return nil, err
	}
	t.n.afterSend()
	ahead()
	timer := t.n.opts.Clock.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case r := <-t.extended:
		return r.reply, r.err
	case <-t.done:
		return nil, t.closedErr()
	case <-timer.C():
		return nil, errors.New("timed out waiting for EXTENDED")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send seals a relay command for hop (0-based) and sends it.
func (t *Tunnel) send(hop int, cmd onion.Command, data []byte) error {
	return t.sendTo(hop, false, cmd, data)
}

// sendLast is send to the exit: onion.ErrAside while it is set aside.
func (t *Tunnel) sendLast(cmd onion.Command, data []byte) error {
	return t.sendTo(-1, true, cmd, data)
}

func (t *Tunnel) sendTo(hop int, last bool, cmd onion.Command, data []byte) error {
	if t.isClosed() {
		return ErrTunnelClosed
	}
	var rp [onion.PayloadSize]byte
	body, err := onion.EncodeRelay(rp[:], cmd, data)
	if err != nil {
		return err
	}
	t.noteSent(cmd)
	first, key := t.circ()
	p := getBuf()
	pl := p.payload()
	clear(pl[:payloadHeader])
	pl[0] = kindRelayFwd
	putCirc(pl, key.id)
	if last {
		err = t.path.SealLast(pl[payloadHeader:], body, t.n.pad)
	} else {
		err = t.path.Seal(pl[payloadHeader:], hop, body, t.n.pad)
	}
	if err != nil {
		putBuf(p)
		return err
	}
	return t.n.sendPayload(first, p)
}

func (t *Tunnel) deliverCreated(reply []byte) {
	r := append([]byte(nil), reply...)
	select {
	case t.created <- r:
	default:
	}
}

// handleBackward opens a backward cell from the tunnel's first hop.
func (t *Tunnel) handleBackward(cell []byte) {
	hop, payload, err := t.path.Open(cell)
	if err != nil {
		t.n.countCellErr(err)
		if errors.Is(err, onion.ErrTagMismatch) {
			t.tagFailed()
		}
		return
	}
	cmd, data, err := onion.DecodeRelay(payload)
	if err != nil {
		t.n.stats.inc(DropRelayMalformed)
		return
	}
	t.noteHeard(hop, cmd)
	switch cmd {
	case onion.CmdExtended:
		t.deliverExtend(extendResult{reply: append([]byte(nil), data...)})
	case onion.CmdExtendFailed:
		reason := "refused"
		if len(data) > 1 {
			reason = string(data[1:])
		}
		t.deliverExtend(extendResult{err: fmt.Errorf("%w by hop %d: %s", ErrExtendFailed, hop+1, reason)})
	case onion.CmdPong:
		id, nonce, err := onion.DecodePing(data)
		if err != nil {
			t.n.stats.inc(DropRelayMalformed)
			return
		}
		now := t.n.opts.Clock.Now()
		t.mu.Lock()
		p, ok := t.pings[id]
		if ok && p.nonce == nonce {
			delete(t.pings, id)
		}
		t.mu.Unlock()
		switch {
		case !ok:
			if f := t.events.Pong; f != nil {
				f(id, nonce, now)
			}
		case p.nonce == nonce:
			p.ch <- now
		}
	case onion.CmdData:
		if hop == t.path.Len()-1 {
			t.touch()
			t.countIn(len(data)) // tunnelstats.go
			if f := t.events.Data; f != nil {
				f(data)
			}
		}
	case onion.CmdTruncated:
		t.n.log.Debug("tunnel truncated", "at_hop", hop+1)
		t.truncatedBy(hop)
	}
}

// tagFailed charges a backward cell that failed its tag to the tunnel;
// past the budget (relay_limits.go) the tunnel is closed: hop 1 forged
// it or relayed a forgery, and either way the circuit is not worth
// keeping. The owner builds another.
func (t *Tunnel) tagFailed() {
	t.mu.Lock()
	over := t.tags.fail(t.n.opts.Clock.Now())
	t.mu.Unlock()
	if !over {
		return
	}
	t.n.stats.inc(DropCircuitTagBudget)
	t.n.limiter.Warn(t.n.log, "tag-budget-tunnel", "closed a tunnel: too many of its backward cells failed their onion tag (forgery)",
		"budget", tagFailBudget)
	t.closeWith(destroyProtocol)
}

func (t *Tunnel) deliverExtend(r extendResult) {
	select {
	case t.extended <- r:
	default:
	}
}

// Ping measures the round trip to hop (0-based) through the tunnel. The
// PING carries a random id and nonce only (PROTOCOL §8); the send time
// stays here.
func (t *Tunnel) Ping(ctx context.Context, hop int) (time.Duration, error) {
	if hop < 0 || hop >= t.path.Len() {
		return 0, fmt.Errorf("node: hop %d out of range 0..%d", hop, t.path.Len()-1)
	}
	p := pendingPing{nonce: t.n.randUint64(), ch: make(chan time.Time, 1)}
	t.mu.Lock()
	id := t.n.randUint64()
	for _, used := t.pings[id]; used; _, used = t.pings[id] {
		id = t.n.randUint64()
	}
	t.pings[id] = p
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pings, id)
		t.mu.Unlock()
	}()
	start := t.n.opts.Clock.Now()
	if err := t.send(hop, onion.CmdPing, onion.EncodePing(id, p.nonce)); err != nil {
		return 0, err
	}
	timer := t.n.opts.Clock.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case at := <-p.ch:
		return at.Sub(start), nil
	case <-t.done:
		return 0, ErrTunnelClosed
	case <-timer.C():
		return 0, fmt.Errorf("node: ping to hop %d timed out", hop+1)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// pendingPing is a Ping waiting for its PONG: the nonce the PONG must
// echo and where to report its arrival.
type pendingPing struct {
	nonce uint64
	ch    chan time.Time
}

// hopIDs are the IDs of the tunnel's hops.
func (t *Tunnel) hopIDs() []identity.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]identity.ID, len(t.hops))
	for i, p := range t.hops {
		out[i] = p.ID
	}
	return out
}

// Hops describes the tunnel's path.
func (t *Tunnel) Hops() []HopInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]HopInfo, len(t.hops))
	for i, p := range t.hops {
		out[i] = HopInfo{ID: p.ID, Addr: p.Addr, Domain: p.Top()}
	}
	return out
}

func (t *Tunnel) touch() { t.lastUsed.Store(t.n.opts.Clock.Now().UnixNano()) }

func (t *Tunnel) lastUse() time.Time { return time.Unix(0, t.lastUsed.Load()) }

// exitPeer is the tunnel's last hop; nil while a rebuild has none yet.
func (t *Tunnel) exitPeer() *view.Peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.aside != nil {
		return t.aside // still the tunnel's exit: its flows wait for the rejoin
	}
	if len(t.hops) == 0 {
		return nil
	}
	return t.hops[len(t.hops)-1]
}

// SendData sends one packet to the tunnel's last hop (the exit) as a
// DATA cell. While a keep-exit repair has the exit set aside it is
// onion.ErrAside: the packet is not sent to another hop. A packet sent
// counts as use (LastUse).
func (t *Tunnel) SendData(pkt []byte) error {
	err := t.sendLast(onion.CmdData, pkt)
	if err == nil {
		t.touch()
		t.countOut(len(pkt)) // tunnelstats.go
	}
	return err
}

// TrySendData is SendData if the tunnel's first link can take the cell
// without waiting (its writer holds only a few batches); otherwise it
// sends nothing and reports false, so that the caller can queue the
// packet where it schedules its flows (the IP service's fair queue).
func (t *Tunnel) TrySendData(pkt []byte) (bool, error) {
	if t.isClosed() {
		return false, ErrTunnelClosed
	}
	if !t.HasRoom() {
		return false, nil
	}
	return true, t.SendData(pkt)
}

// HasRoom reports whether the tunnel's first link takes a cell now
// without waiting (TrySendData would send).
func (t *Tunnel) HasRoom() bool {
	first, _ := t.circ()
	return first != nil && t.n.hasRoom(first)
}

// AwaitRoom waits until the tunnel's first link can take a cell without
// waiting (TrySendData would send), or the node stops. The IP service's
// fair queue waits here rather than in SendData, so that its backlog
// stays in its own per-flow queues, not in the engine's shared FIFO.
func (t *Tunnel) AwaitRoom() {
	if first, _ := t.circ(); first != nil && !t.isClosed() {
		t.n.awaitRoom(first)
	}
}

// SetupTime is how long building the tunnel took.
func (t *Tunnel) SetupTime() time.Duration { return t.setup }

func (t *Tunnel) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// destroyedBy handles hop 1's DESTROY with reason. IDLE and FINISHED
// mean a relay ended the tunnel (it idled out, or its other end closed):
// it is closed, never repaired, since a repair would only rebuild what
// nobody uses (lifecycle.go). PROTOCOL (hop 1 says we broke the protocol)
// closes it too. Any other reason on a built tunnel is hop 1 leaving: a
// keep-exit repair replaces it (rejoin.go).
func (t *Tunnel) destroyedBy(reason byte) {
	if !endsTunnel(reason) && reason != destroyProtocol && t.keepExitRepair(0) {
		// Hop 1 left (it stopped cleanly, or restarted and forgot the
		// circuit): heal around it like a lost first link, keeping the
		// exit and the connections through it. A hop 1 that says we
		// broke the protocol is not argued with.
		return
	}
	t.mu.Lock()
	if !t.closed {
		t.why = reason
	}
	t.mu.Unlock()
	if endsTunnel(reason) && !t.isClosed() {
		t.n.stats.inc(EventTunnelsEnded)
	}
	t.destroyed()
}

// destroyed marks the tunnel dead after a DESTROY or a lost first link.
func (t *Tunnel) destroyed() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	key := t.key
	close(t.done)
	t.mu.Unlock()
	t.n.mu.Lock()
	if r, ok := t.n.routes[key]; ok && r.t == t {
		delete(t.n.routes, key)
	}
	delete(t.n.tunnels, t)
	t.n.mu.Unlock()
	t.exitLost()
}

// exitLost tells the tunnel's owner that nothing through its exit can
// continue (TunnelEvents.ExitLost).
func (t *Tunnel) exitLost() {
	if f := t.events.ExitLost; f != nil {
		f()
	}
}

// Close tears the tunnel down along its whole path: DESTROY(FINISHED),
// which every hop passes on, so none repairs or keeps a part of it.
func (t *Tunnel) Close() error { return t.closeWith(destroyFinished) }

// closeWith is Close telling hop 1 why.
func (t *Tunnel) closeWith(reason byte) error {
	if t.isClosed() {
		return nil
	}
	first, key := t.circ()
	t.n.sendDestroyReason(first, key.id, reason)
	t.destroyed()
	return nil
}

// Done is closed when the tunnel is gone.
func (t *Tunnel) Done() <-chan struct{} { return t.done }
