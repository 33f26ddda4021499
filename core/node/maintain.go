package node

import "time"

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
