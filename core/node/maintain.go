package node

import (
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// wakeups are the channels (capacity 1) that wake the node's timer loops
// before their next due time, when something happens that the loop has
// to see at once: it then need not poll for it.
type wakeups struct {
	once  sync.Once
	check chan struct{} // checkLoop: a tunnel it was not watching carries traffic

	restarts      []uint64 // per endpoint: its transport plugin's restarts seen (maintainLoop only)
	keepaliveSlot int64    // the last keepalive instant's round (maintainLoop only; links.go)
}

func (n *Node) wakeups() *wakeups {
	w := &n.wake
	w.once.Do(func() {
		w.check = make(chan struct{}, 1)
	})
	return w
}

// poke wakes a loop without blocking; a wake-up already pending is enough.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// maintainLoop runs everything that happens on a timer rather than in
// answer to a frame. It runs every MaintenanceInterval while something is
// in flux (a link to a mimic not up or rekeying, a probe or an orphaned
// circuit pending) and every settledInterval once nothing is: a settled
// node's links, views and circuits change on a scale of seconds to
// minutes, and waking four times a second to find nothing to do was most
// of an idle node's wake-ups after the shaper's. A proposal wakes it at
// once either way.
func (n *Node) maintainLoop() {
	fast, slow := n.opts.MaintenanceInterval, n.settledInterval()
	timer := n.opts.Clock.NewTimer(fast)
	defer timer.Stop()
	n.maintain(n.opts.Clock.Now())
	for {
		select {
		case <-n.stop:
			return
		case props := <-n.proposal:
			n.handleProposals(props)
			n.maintain(n.opts.Clock.Now())
		case now := <-timer.C():
			n.maintain(now)
		}
		now := n.opts.Clock.Now()
		next := fast
		if slow > fast && n.settled() {
			// On whole multiples of slow, so that the keepalive
			// instants (links.go) fall on rounds.
			next = slow - time.Duration(now.UnixNano()%int64(slow))
		}
		// Wake at the next keepalive instant, even between rounds.
		next = min(next, n.untilKeepalive(now))
		timer.Stop()
		timer.Reset(next)
	}
}

// maxSettledInterval bounds how long a settled node waits between two
// maintenance rounds (and so between two runs of OnMaintain's functions).
// Two seconds: a round is an idle node's most frequent wake-up (each one
// wakes several of the runtime's threads), while what a round must see
// soon, a plugin that restarted, is seen within 2 s (the fault suite
// allows 5 s for an exit adapter's flows to be reset). A dead link is
// dropped within a round of LinkTimeout.
const maxSettledInterval = 2 * time.Second

// settledInterval is the maintenance interval of a settled node: at most
// maxSettledInterval, half the keepalive interval (so a keepalive leaves
// at most half an interval late), and the liveness pass's period; never
// below MaintenanceInterval.
func (n *Node) settledInterval() time.Duration {
	d := min(maxSettledInterval, n.opts.KeepaliveInterval/2)
	if n.opts.PeerSilence >= 0 {
		d = min(d, livenessEvery(n.opts.PeerSilence, n.opts.MaintenanceInterval))
	}
	return max(d, n.opts.MaintenanceInterval)
}

// settled reports whether maintenance has nothing in flux: every mimic in
// the view has a link that is up and not rekeying, no probe waits for its
// proof, and no orphaned circuit waits out its grace.
func (n *Node) settled() bool {
	mimics := n.mimicSet()
	n.linkMu.Lock()
	if len(n.probes) != 0 || len(n.probing) != 0 {
		n.linkMu.Unlock()
		return false
	}
	links := make(map[identity.ID]*peerLink, len(mimics))
	for id := range mimics {
		if l, ok := n.links[id]; ok {
			links[id] = l
		}
	}
	n.linkMu.Unlock()
	for id := range mimics {
		if _, ok := links[id]; !ok {
			if _, inView := n.view.Get(id); inView {
				return false // a mimic we have no link to yet
			}
		}
	}
	for _, l := range links {
		l.mu.Lock()
		steady := l.cur != nil && l.next == nil && l.pending == nil
		l.mu.Unlock()
		if !steady {
			return false
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.rejoins {
		if c.orphaned.Load() != 0 {
			return false
		}
	}
	return true
}

func (n *Node) maintain(now time.Time) {
	n.expireProbes(now)
	n.keepaliveAfterRestart()
	n.maintainLinks(now)
	n.expireCircuits(now)
	n.expireOrphans(now)
	n.descMu.RLock()
	until := n.descUntil
	n.descMu.RUnlock()
	// Re-sign at half-life, rotating the onion key, so peers always hold
	// a valid descriptor of ours.
	if until.Sub(now) < n.opts.DescriptorLifetime/2 {
		if err := n.onion.rotate(n.opts.Rand); err == nil {
			if err := n.publish(); err != nil {
				n.log.Error("re-publishing descriptor", "err", err)
			}
		}
	}
	n.expireView(now)
	n.runMaintainers(now)
}

// expireView drops peers whose descriptors expired, and those that have
// been silent for too long (liveness.go).
func (n *Node) expireView(now time.Time) {
	n.view.RemoveExpired(now)
	n.checkLiveness(now)
}

// keepaliveAfterRestart sends a keepalive on every link of a transport
// whose plugin restarted since the last round. A restarted session-based
// transport (kcp, dtls) drops a peer's frames until it hears from this
// side; the keepalive re-opens the sessions now, so that the keepalive
// interval can be long (a third of LinkTimeout) without delaying that.
func (n *Node) keepaliveAfterRestart() {
	w := &n.wake
	if w.restarts == nil {
		w.restarts = make([]uint64, len(n.eps))
	}
	for i, ep := range n.eps {
		r, ok := ep.tr.(interface{ Restarts() uint64 })
		if !ok {
			continue
		}
		c := r.Restarts()
		if c == w.restarts[i] {
			continue
		}
		w.restarts[i] = c
		var on []*peerLink
		for _, l := range n.establishedLinks(nil) {
			if s, addr := l.sendSession(); s != nil && addr.ep == i {
				on = append(on, l)
			}
		}
		n.sendKeepalives(on)
	}
}
