package node

import (
	"sync"
	"time"
)

// wakeups are the channels (capacity 1) that wake the node's timer loops
// before their next due time, when something happens that the loop has
// to see at once: it then need not poll for it.
type wakeups struct {
	once  sync.Once
	check chan struct{} // checkLoop: a tunnel it was not watching carries traffic
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
// answer to a frame.
func (n *Node) maintainLoop() {
	tick := n.opts.Clock.NewTicker(n.opts.MaintenanceInterval)
	defer tick.Stop()
	n.maintain(n.opts.Clock.Now())
	for {
		select {
		case <-n.stop:
			return
		case props := <-n.proposal:
			n.handleProposals(props)
			n.maintain(n.opts.Clock.Now())
		case now := <-tick.C():
			n.maintain(now)
		}
	}
}

func (n *Node) maintain(now time.Time) {
	n.expireProbes(now)
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
