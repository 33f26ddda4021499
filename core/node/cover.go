package node

import (
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// The cover engine. The policy sets a per-link rate once per policy tick;
// between ticks the engine releases each shaped link's frames on a fine
// grid: queued data first, padding when there is none, so on the wire a
// shaped link sends the same number of identical-looking frames whatever
// it carries.

const shapeGrid = 5 * time.Millisecond

func (n *Node) shapeLoop() {
	policy := n.opts.Cover
	if policy == nil {
		return
	}
	interval := policy.Interval()
	if interval <= 0 {
		interval = time.Second
	}
	policyTick := n.opts.Clock.NewTicker(interval)
	defer policyTick.Stop()
	grid := n.opts.Clock.NewTicker(shapeGrid)
	defer grid.Stop()
	last := n.opts.Clock.Now()
	for {
		select {
		case <-n.stop:
			return
		case now := <-policyTick.C():
			n.consultPolicy(policy, now)
		case now := <-grid.C():
			dt := now.Sub(last).Seconds()
			last = now
			n.releaseShaped(dt)
		}
	}
}

// consultPolicy gives the policy the last tick's per-link statistics and
// applies the rates it answers with.
func (n *Node) consultPolicy(policy cover.Policy, now time.Time) {
	links := n.establishedLinks()
	stats := make([]cover.LinkStats, len(links))
	for i, l := range links {
		stats[i] = cover.LinkStats{
			Peer:      l.id.Short(),
			Queued:    len(l.queue),
			DataSent:  l.dataSent.Swap(0),
			CoverSent: l.coverSent.Swap(0),
			DataRecv:  l.dataRecv.Swap(0),
			CoverRecv: l.coverRecv.Swap(0),
		}
	}
	targets, err := policy.Tick(now, stats)
	if err != nil {
		// A failing policy must not stop the data: fall back to unshaped
		// links until it answers again.
		n.limiter.warn(n.log, "cover", "cover policy failed; links unshaped until it recovers", "policy", policy.Name(), "err", err)
		for _, l := range links {
			l.setRate(0)
		}
		return
	}
	for i, l := range links {
		if i < len(targets) {
			l.setRate(targets[i].Rate)
		}
	}
}

func (n *Node) establishedLinks() []*peerLink {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*peerLink, 0, len(n.links))
	for _, l := range n.links {
		out = append(out, l)
	}
	return out
}

// releaseShaped sends what each shaped link is due for dt seconds, and
// flushes the queue of links that just became unshaped.
func (n *Node) releaseShaped(dt float64) {
	for _, l := range n.establishedLinks() {
		rate := l.getRate()
		if rate == 0 {
			l.credit = 0
			n.flushQueue(l)
			continue
		}
		if !l.up() {
			continue
		}
		l.credit += rate * dt
		// Cap the credit so a stalled loop does not burst afterwards.
		if maxCredit := rate*0.05 + 1; l.credit > maxCredit {
			l.credit = maxCredit
		}
		for l.credit >= 1 {
			l.credit--
			select {
			case p := <-l.queue:
				n.sealAndSend(l, p, false)
			default:
				p := getBuf()
				clear(p.payload())
				p.payload()[0] = kindPadding
				n.sealAndSend(l, p, true)
			}
		}
	}
}

func (n *Node) flushQueue(l *peerLink) {
	for {
		select {
		case p := <-l.queue:
			n.sealAndSend(l, p, false)
		default:
			return
		}
	}
}
