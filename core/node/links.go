package node

import (
	"errors"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/view"
)

// peerLink is the node's link to one mimic: its sessions, its address and
// its shaping state. Sessions rotate by fresh handshakes; the previous one
// is kept to decrypt frames still in flight.
type peerLink struct {
	id identity.ID

	mu           sync.Mutex
	addr         peerAddr
	cur          *link.Session // sends use this one
	prev         *link.Session // still accepted on receive
	next         *link.Session // responder side: promoted on first frame received on it
	nextAt       time.Time     // when next was answered
	pending      *link.Handshake
	pendingIndex uint32
	pendingAt    time.Time
	pendingKey   [32]byte // the peer link key pending was made for
	lastTS       [12]byte // newest handshake timestamp accepted from this peer
	// freshAt is when a handshake in which the peer said FRESH last
	// ended our routes on this link, freshKey the peer's link key in it
	// (lifecycle.go, peerRestarted).
	freshAt     time.Time
	freshKey    [32]byte
	lastAttempt time.Time
	unanswered  int // handshakes sent since the link was last up, unanswered
	upSince     time.Time
	handshakeAt time.Time // last session promoted (linkstats.go)

	lastRecv atomic.Int64 // unix nanos
	lastSent atomic.Int64

	// Shaping (cover.go). rate is float64 bits; 0 = unshaped.
	rate      atomic.Uint64
	queue     chan *frameBuf
	credit    float64 // owned by shapeLoop
	dataSent  atomic.Uint64
	coverSent atomic.Uint64
	dataRecv  atomic.Uint64
	coverRecv atomic.Uint64
	seen      linkSeen // the shaper's last reading of the four above (linkstats.go)
}

func newPeerLink(id identity.ID, queueLen int) *peerLink {
	return &peerLink{id: id, queue: make(chan *frameBuf, queueLen)}
}

func (l *peerLink) shaped() bool { return l.rate.Load() != 0 }

func (l *peerLink) setRate(r float64) {
	if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		r = 0
	}
	l.rate.Store(math.Float64bits(r))
}

func (l *peerLink) getRate() float64 { return math.Float64frombits(l.rate.Load()) }

func (l *peerLink) sendSession() (*link.Session, peerAddr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.addr
}

func (l *peerLink) up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur != nil
}

func (l *peerLink) noteSent(now time.Time, padding bool) {
	l.lastSent.Store(now.UnixNano())
	if padding {
		l.coverSent.Add(1)
	} else {
		l.dataSent.Add(1)
	}
}

// link returns the link to id, creating it if create is set.
func (n *Node) link(id identity.ID, create bool) *peerLink {
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
	l := n.links[id]
	if l == nil && create {
		l = newPeerLink(id, n.opts.QueueLength)
		n.links[id] = l
	}
	return l
}

// upLink returns the link to id if it has an established session.
func (n *Node) upLink(id identity.ID) *peerLink {
	l := n.link(id, false)
	if l == nil || !l.up() {
		return nil
	}
	return l
}

// newIndexLocked picks an unused local session index (never 0: probes use
// 0). Indices are on the wire, so they come from the node's cryptographic
// randomness (Options.Rand, crypto/rand by default), never from its
// statistical generator (link.NewIndex says why); should that source
// fail, from the padding generator, a ChaCha8 seeded from it.
func (n *Node) newIndexLocked(l *peerLink) uint32 {
	for {
		idx, err := link.NewIndex(n.opts.Rand)
		if err != nil {
			idx, _ = link.NewIndex(n.pad)
		}
		if _, used := n.byIndex[idx]; !used && idx != 0 {
			n.byIndex[idx] = l
			return idx
		}
	}
}

// initiate starts a link handshake with an admitted mimic.
func (n *Node) initiate(l *peerLink) {
	p, ok := n.view.Get(l.id)
	if !ok {
		return
	}
	to, ok := n.linkAddr(p)
	if !ok {
		return
	}
	now := n.opts.Clock.Now()
	n.linkMu.Lock()
	idx := n.newIndexLocked(l)
	n.linkMu.Unlock()
	hs, frame, err := link.InitiateFlags(n.linkStatic, n.id, p.Desc.LinkKey, idx, l.freshFlag(), n.opts.Rand, now)
	if err != nil {
		n.releaseIndex(idx)
		n.limiter.Warn(n.log, "initiate", "link handshake could not start", "peer", l.id.Short(), "err", err)
		return
	}
	l.mu.Lock()
	if l.pending != nil {
		n.releaseIndex(l.pendingIndex)
		l.unanswered++
	}
	l.pending, l.pendingIndex, l.pendingAt, l.lastAttempt = hs, idx, now, now
	l.pendingKey = p.Desc.LinkKey
	l.addr = to
	l.mu.Unlock()
	n.sendRaw(to, frame)
}

func (n *Node) releaseIndex(idx uint32) {
	n.linkMu.Lock()
	delete(n.byIndex, idx)
	n.linkMu.Unlock()
}

// linkAddr chooses where to reach an admitted peer: the first of our
// transports, in preference order, that its descriptor advertises at the
// IP address it proved reachable; else the proven address itself.
func (n *Node) linkAddr(p *view.Peer) (peerAddr, bool) {
	if to, ok := n.endpointFor(func(name string) (netip.AddrPort, bool) {
		for _, a := range p.Desc.Addrs {
			if a.Transport == name && a.AddrPort.Addr() == p.Addr.Addr() {
				return a.AddrPort, true
			}
		}
		return netip.AddrPort{}, false
	}); ok {
		return to, true
	}
	ep, ok := n.endpointNamed(p.Transport)
	return peerAddr{ep: ep, ap: p.Addr}, ok
}

// resyncFrom reacts to a data frame for a session we no longer hold, sent
// from the address of one of our mimic links: the peer still believes in a
// session we dropped (say while our view was growing and it briefly was
// no mimic of ours), so a fresh handshake now heals the link in one round
// trip instead of after its timeout. Rate-limited per link; nothing is
// trusted from the frame itself, it only makes us do what maintenance
// would do later anyway.
func (n *Node) resyncFrom(src peerAddr) {
	// Never hold n.linkMu while taking a link's mu: elsewhere a link's mu is
	// held while n.linkMu is taken (releaseIndex), and the two orders
	// together deadlocked nodes under load (seen at 10,000 simulated
	// nodes: initiate waiting for n.linkMu, resyncFrom for the link).
	n.linkMu.Lock()
	all := make([]*peerLink, 0, len(n.links))
	for _, x := range n.links {
		all = append(all, x)
	}
	n.linkMu.Unlock()
	var l *peerLink
	for _, x := range all {
		x.mu.Lock()
		match := x.addr == src
		x.mu.Unlock()
		if match {
			l = x
			break
		}
	}
	if l == nil || !n.isMimic(l.id) {
		return
	}
	now := n.opts.Clock.Now()
	l.mu.Lock()
	due := now.Sub(l.lastAttempt) >= resyncEvery && (l.pending == nil || now.Sub(l.pendingAt) >= resyncEvery)
	l.mu.Unlock()
	if due {
		n.initiate(l)
	}
}

const resyncEvery = 250 * time.Millisecond

// handleInit answers a link handshake initiation, but only from an
// admitted peer that is our mimic.
func (n *Node) handleInit(src peerAddr, frame []byte) {
	now := n.opts.Clock.Now()
	known, exact := n.mimicSource(src)
	if !known {
		// Refused before any key agreement: the initiator's identity
		// is sealed under a Diffie-Hellman, and while views still differ
		// most initiations come from peers that do not count as our
		// mimics yet.
		n.stats.inc(DropHandshakeNonMimic)
		n.limiter.Debug(n.log, "init-nonmimic-addr", "refused link handshake from an address that is no mimic's", "from", src)
		return
	}
	// Still before any key agreement: each source's budget. The exact
	// address a mimic is known at has a budget of its own, so a flood
	// from another port of its host (or NAT) cannot starve it.
	key := sourceKey(src.ap)
	if exact {
		key = netip.AddrPortFrom(src.ap.Addr().Unmap(), src.ap.Port())
	}
	if !n.guard().handshakes.allow(key, now) {
		n.stats.inc(DropHandshakeRateLimit)
		n.limiter.Debug(n.log, "init-ratelimit", "refused link handshake over its source's budget", "from", src)
		return
	}
	n.stats.inc(EventHandshakeDH)
	var l *peerLink
	var refused bool
	var peerKey [32]byte
	n.linkMu.Lock()
	idx := n.newIndexLocked(nil)
	n.linkMu.Unlock()
	s, resp, remote, ts, err := link.Respond(n.linkStatic, frame, idx, n.opts.Rand, now,
		func(remote identity.ID) ([32]byte, [12]byte, link.Flags, error) {
			p, ok := n.view.Get(remote)
			if !ok || !n.isMimic(remote) {
				refused = true
				return [32]byte{}, [12]byte{}, 0, errNotMimic
			}
			l = n.link(remote, true)
			l.mu.Lock()
			last := l.lastTS
			l.mu.Unlock()
			peerKey = p.Desc.LinkKey
			return p.Desc.LinkKey, last, l.freshFlag(), nil
		})
	if err != nil {
		n.releaseIndex(idx)
		if refused {
			n.stats.inc(DropHandshakeNonMimic)
			n.limiter.Debug(n.log, "init-nonmimic", "refused link handshake from a non-mimic", "from", src)
		} else {
			n.stats.inc(DropHandshakeInvalid)
			n.limiter.Debug(n.log, "init-invalid", "dropped invalid link handshake", "err", err)
		}
		return
	}
	n.linkMu.Lock()
	n.byIndex[idx] = l
	n.linkMu.Unlock()
	l.mu.Lock()
	l.lastTS = ts
	if l.next != nil {
		n.releaseIndex(l.next.LocalIndex())
	}
	l.next, l.nextAt = s, now
	l.addr = src
	// Even with no session to keep using, the new one waits for the
	// initiator's first frame on it (it confirms at once). Until then we
	// cannot know the initiator kept it: it may have started a newer
	// attempt, or dropped the handshake because we are no mimic of its
	// yet, and a session only one side holds silently swallows every
	// cell sent on it (a CREATE, say) until the link times out.
	l.mu.Unlock()
	l.lastRecv.Store(now.UnixNano())
	_ = remote
	if s.PeerFlags()&link.FlagFresh != 0 {
		n.peerRestarted(l, true, peerKey, now)
	}
	n.sendRaw(src, resp)
}

var errNotMimic = errors.New("node: peer is not a mimic")

// mimicSource reports whether src's IP address is one that a current
// mimic's descriptor advertises or where a mimic's link now is (known),
// and whether src is exactly such an address, port included (exact).
// Only the IP decides known, and against every advertised address, so
// that a mimic initiating over another of its transports (another port)
// still gets its handshake answered; the handshake itself then proves who
// it is.
func (n *Node) mimicSource(src peerAddr) (known, exact bool) {
	ip, port := src.ap.Addr().Unmap(), src.ap.Port()
	check := func(a netip.AddrPort) {
		if a.Addr().Unmap() == ip {
			known = true
			exact = exact || a.Port() == port
		}
	}
	for _, m := range n.mimicTable().Mimics(n.id) {
		p, ok := n.view.Get(identity.ID(m))
		if !ok {
			continue
		}
		check(p.Addr)
		// A link that moved (NAT rebinding) is answered where it is now.
		if l := n.link(identity.ID(m), false); l != nil {
			l.mu.Lock()
			la := l.addr.ap
			l.mu.Unlock()
			check(la)
		}
		for _, a := range p.Desc.Addrs {
			check(a.AddrPort)
		}
		if exact {
			return true, true
		}
	}
	return known, exact
}

// promoteLocked makes l.next the sending session. Caller holds l.mu.
func (l *peerLink) promoteLocked(n *Node) {
	if l.next == nil {
		return
	}
	if l.prev != nil {
		n.releaseIndex(l.prev.LocalIndex())
	}
	wasUp := l.cur != nil
	l.prev, l.cur, l.next = l.cur, l.next, nil
	l.handshakeAt = n.opts.Clock.Now()
	l.unanswered = 0
	if !wasUp {
		l.upSince = n.opts.Clock.Now()
		n.stats.inc(EventLinksUp)
		n.log.Debug("link up", "peer", l.id.Short())
	}
}

// handleResp completes a handshake we initiated.
func (n *Node) handleResp(src peerAddr, idx uint32, frame []byte) {
	n.linkMu.Lock()
	l := n.byIndex[idx]
	n.linkMu.Unlock()
	if l == nil {
		n.stats.inc(DropUnknownSession)
		return
	}
	l.mu.Lock()
	if l.pending == nil || l.pendingIndex != idx {
		l.mu.Unlock()
		n.stats.inc(DropUnknownSession)
		return
	}
	s, err := l.pending.Finish(frame, n.opts.Clock.Now())
	if err != nil {
		l.mu.Unlock()
		n.stats.inc(DropHandshakeInvalid)
		return
	}
	l.pending = nil
	peerKey := l.pendingKey
	// Heard now, and recorded before the link is up: maintenance that
	// saw it up with nothing ever heard would take it for dead.
	l.lastRecv.Store(n.opts.Clock.Now().UnixNano())
	if l.next != nil {
		// The peer's handshake crossed ours and we answered it: it is
		// kept as the previous session, so that the peer, which sends
		// on it once our answer arrives, is still heard, while we send
		// on ours, which it holds the same way.
		l.promoteLocked(n)
	}
	l.next = s
	l.addr = src
	l.promoteLocked(n)
	l.mu.Unlock()
	if s.PeerFlags()&link.FlagFresh != 0 {
		n.peerRestarted(l, false, peerKey, n.opts.Clock.Now())
	}
	// Confirm at once so the responder starts sending on this session.
	n.sendControl(l, kindKeepalive, 0)
}

// openData authenticates and decrypts a data frame into dst.
func (n *Node) openData(l *peerLink, idx uint32, dst, frame []byte) ([]byte, error) {
	l.mu.Lock()
	var s *link.Session
	isNext := false
	switch {
	case l.cur != nil && l.cur.LocalIndex() == idx:
		s = l.cur
	case l.next != nil && l.next.LocalIndex() == idx:
		s, isNext = l.next, true
	case l.prev != nil && l.prev.LocalIndex() == idx:
		s = l.prev
	}
	l.mu.Unlock()
	if s == nil {
		return nil, errNoSession
	}
	out, err := s.Open(dst, frame)
	if err != nil {
		return nil, err
	}
	if isNext {
		l.lastRecv.Store(n.opts.Clock.Now().UnixNano()) // before it is up, as in handleResp
		l.mu.Lock()
		if l.next == s {
			l.promoteLocked(n)
		}
		l.mu.Unlock()
	}
	return out, nil
}

// sendControl sends a link control payload with no cell content.
func (n *Node) sendControl(l *peerLink, kind byte, circ uint32) error {
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kind
	putCirc(pl, circ)
	return n.sendPayload(l, p)
}

// maintainLinks keeps a link up to every mimic, rekeys, sends keepalives
// and drops links that went silent or whose peer is no longer a mimic.
func (n *Node) maintainLinks(now time.Time) {
	mimics := n.mimicSet()
	for id := range mimics {
		if _, ok := n.view.Get(id); !ok {
			continue
		}
		l := n.link(id, true)
		l.mu.Lock()
		needInit := false
		retry := l.retryDelay()
		switch {
		case l.pending != nil && now.Sub(l.pendingAt) < retry:
		case l.cur == nil && l.next != nil && now.Sub(l.nextAt) < retry:
			// We answered the peer's handshake: its confirmation is due.
		case l.cur == nil:
			// Both sides may initiate; crossed handshakes are harmless (each
			// side ends up sending on the newest session and accepting
			// both). Waiting for the other side instead would leave a link
			// down whenever that side still believes its old session works.
			needInit = now.Sub(l.lastAttempt) >= retry
		case l.cur.NeedsRekey(now) && l.next == nil:
			needInit = less(n.id, id) || l.cur.Expired(now.Add(30*time.Second))
		}
		l.mu.Unlock()
		if needInit {
			n.initiate(l)
		}
	}
	n.linkMu.Lock()
	all := make([]*peerLink, 0, len(n.links))
	for _, l := range n.links {
		all = append(all, l)
	}
	n.linkMu.Unlock()
	keepalive := n.keepaliveRound(now)
	var idle []*peerLink
	for _, l := range all {
		_, isMimic := mimics[l.id]
		l.mu.Lock()
		// Read under the lock: a link promoted after this read would
		// otherwise look silent since whenever it was last heard (or
		// ever, for a new one) and be dropped as it comes up.
		last := time.Unix(0, l.lastRecv.Load())
		dead := l.cur != nil && (now.Sub(last) > n.opts.LinkTimeout || l.cur.Expired(now))
		// A peer that stopped being a mimic (the view grew, or the epoch
		// turned) loses its link: only mimic links may carry traffic.
		demoted := !isMimic && (l.cur != nil || l.next != nil || l.pending != nil)
		if dead || demoted {
			n.dropSessionsLocked(l)
		}
		up := l.cur != nil
		l.mu.Unlock()
		if dead || demoted {
			if dead {
				n.log.Info("link down", "peer", l.id.Short(), "silent_for", now.Sub(last).Round(time.Millisecond))
			} else {
				n.log.Debug("link closed: peer is no longer a mimic", "peer", l.id.Short())
			}
			n.linkDown(l)
		}
		if !isMimic {
			n.linkMu.Lock()
			if n.links[l.id] == l && !l.up() {
				delete(n.links, l.id)
			}
			n.linkMu.Unlock()
			continue
		}
		if up && !l.shaped() && keepalive && now.Sub(time.Unix(0, l.lastSent.Load())) >= n.opts.KeepaliveInterval/2 {
			idle = append(idle, l)
		}
	}
	n.sendKeepalives(idle)
}

// Keepalives. A link that sent nothing else for a while sends a
// keepalive, so that its peer, which drops a link silent for LinkTimeout,
// keeps it. They leave together, at the node's keepalive instants: the
// multiples of KeepaliveInterval since the Unix epoch (maintainLoop wakes
// at each). At an instant every up, unshaped mimic link that sent nothing
// for half an interval sends one, all in one corked batch (one write to
// the transport). An idle link thus sends one every KeepaliveInterval, and
// one with traffic at most 1.5 intervals after its last frame; a third of
// LinkTimeout by default, so its peer still hears it after one is lost.
//
// Nodes whose clocks agree (NTP) send theirs at the same instants, so an
// idle node receives its peers' keepalives in one burst too: one wake-up
// per interval instead of one per link and direction. What an observer
// of the links learns is no more than before: that a link was idle, which
// it sees anyway; and less about when its traffic ended, since the
// keepalive's time no longer echoes the last frame's (it was sent exactly
// KeepaliveInterval after it).

// keepaliveRound reports whether now is in a keepalive instant's round:
// the first maintenance round since an instant passed.
func (n *Node) keepaliveRound(now time.Time) bool {
	every := n.opts.KeepaliveInterval
	if every <= 0 {
		return false
	}
	slot := now.UnixNano() / int64(every)
	w := &n.wake
	if slot == w.keepaliveSlot {
		return false
	}
	w.keepaliveSlot = slot
	return true
}

// untilKeepalive is how long until the next keepalive instant after now.
func (n *Node) untilKeepalive(now time.Time) time.Duration {
	every := n.opts.KeepaliveInterval
	if every <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return every - time.Duration(now.UnixNano()%int64(every))
}

// sendKeepalives sends a keepalive on each link, corked so that they
// leave in one write per transport.
func (n *Node) sendKeepalives(links []*peerLink) {
	n.cork(len(links))
	defer n.uncork(len(links))
	for _, l := range links {
		n.sendControl(l, kindKeepalive, 0)
	}
}

func (n *Node) dropSessionsLocked(l *peerLink) {
	for _, s := range []*link.Session{l.cur, l.prev, l.next} {
		if s != nil {
			n.releaseIndex(s.LocalIndex())
		}
	}
	if l.pending != nil {
		n.releaseIndex(l.pendingIndex)
	}
	l.cur, l.prev, l.next, l.pending = nil, nil, nil, nil
}

const (
	handshakeRetry = time.Second
	// maxRetryShift caps the back-off at handshakeRetry << 6 = 64 s. A
	// long cap delays nothing that matters: a peer that newly counts us
	// as its mimic initiates itself at once (its link to us is new), and
	// a link that was up retries from 1 s.
	maxRetryShift = 6
)

// retryDelay is how long to wait for an answer before handshaking again:
// doubling with each unanswered attempt. A peer that does not answer is
// usually one whose view differs from ours and that does not count us as
// its mimic yet; each refused attempt costs both sides key agreements,
// and once its view catches up it initiates itself, so backing off
// delays nothing. Caller holds l.mu.
func (l *peerLink) retryDelay() time.Duration {
	return handshakeRetry << min(l.unanswered, maxRetryShift)
}

func less(a, b identity.ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
