package node

import (
	"encoding/binary"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/view"
)

// Liveness: a peer stays in the view only while it is heard from, by a
// proof answering our probe or by authenticated traffic on its link.
// Descriptor expiry alone would keep a peer that left for as long as its
// descriptor said (Sybils that joined with long descriptors and left took
// down more than half of the honest mimic links, because every node kept
// choosing them as mimics). Probes received do not count: their source can
// be forged.
//
// A peer quiet for a third of PeerSilence (plus a per-peer offset, so a
// view admitted all at once is not probed all at once) is probed at its
// proven address; one silent for PeerSilence is evicted. An evicted peer
// whose descriptor is still valid is probed again once per PeerSilence,
// and re-admitted only by the fresh proof it answers with.

// dormantPeer is an evicted peer we still look for.
type dormantPeer struct {
	desc *descriptor.Descriptor
	addr peerAddr
	next time.Time
}

// livenessEvery is how often the liveness pass runs: often enough that a
// peer is evicted within a sixty-fourth of PeerSilence of the bound.
func livenessEvery(silence, maintenance time.Duration) time.Duration {
	return max(silence/64, maintenance)
}

// checkLiveness is the liveness pass; maintain calls it every round and
// it runs at most every livenessEvery.
func (n *Node) checkLiveness(now time.Time) {
	silence := n.opts.PeerSilence
	if silence < 0 {
		return
	}
	g := n.guard()
	g.mu.Lock()
	if now.Before(g.nextLiveness) {
		g.mu.Unlock()
		return
	}
	g.nextLiveness = now.Add(livenessEvery(silence, n.opts.MaintenanceInterval))
	g.mu.Unlock()

	n.heardOnLinks()
	n.evictSilent(now, silence)
	n.refreshQuiet(now, silence)
	n.probeDormant(now, silence)
}

// heardOnLinks credits each peer with the last authenticated frame on its
// link (read here, once per pass, not per frame on the receive path).
func (n *Node) heardOnLinks() {
	n.linkMu.Lock()
	links := make([]*peerLink, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.linkMu.Unlock()
	for _, l := range links {
		if r := l.lastRecv.Load(); r != 0 {
			n.view.Touch(l.id, time.Unix(0, r))
		}
	}
}

// evictSilent drops peers silent for the bound, unless no peer at all was
// heard within it: then it is this node that was cut off (asleep, or its
// network down), and emptying its view would only strand it.
func (n *Node) evictSilent(now time.Time, silence time.Duration) {
	cut := now.Add(-silence)
	total := n.view.Len()
	if total == 0 {
		return
	}
	if len(n.view.Quiet(cut)) == total {
		n.stats.inc(EventEvictionsSkipped)
		n.limiter.Warn(n.log, "evict-offline", "no peer heard from for the silence bound; evicting nobody", "bound", silence, "peers", total)
		return
	}
	for _, p := range n.view.RemoveSilent(cut) {
		n.stats.inc(EventEvictedSilent)
		n.log.Info("peer evicted: silent", "peer", p.ID.Short(), "bound", silence)
		n.addDormant(p, now.Add(silence))
	}
}

// refreshQuiet probes the peers that have been quiet for a while at their
// proven addresses; a proof brings their heard time up to date.
func (n *Node) refreshQuiet(now time.Time, silence time.Duration) {
	base := silence / 3
	for _, p := range n.view.Quiet(now.Add(-base)) {
		heard, ok := n.view.Heard(p.ID)
		if !ok || now.Sub(heard) < base+n.refreshOffset(p.ID, silence/6) {
			continue
		}
		ep, ok := n.endpointNamed(p.Transport)
		if !ok {
			continue
		}
		if n.probe(peerAddr{ep: ep, ap: p.Addr}, p.ID, false) {
			n.stats.inc(EventRefreshProbes)
		}
	}
}

// refreshOffset spreads refresh probes over [0, spread): a fixed offset
// per (our ID, peer ID) pair.
func (n *Node) refreshOffset(id identity.ID, spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	x := binary.BigEndian.Uint64(id[:8]) ^ binary.BigEndian.Uint64(n.id[:8])
	return time.Duration(x % uint64(spread))
}

// addDormant remembers an evicted peer to look for it again, as long as
// the table has room (it holds at most LimiterSources peers).
func (n *Node) addDormant(p *view.Peer, next time.Time) {
	ep, ok := n.endpointNamed(p.Transport)
	if !ok {
		return
	}
	g := n.guard()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.dormant) >= n.opts.LimiterSources {
		return
	}
	g.dormant[p.ID] = &dormantPeer{desc: p.Desc, addr: peerAddr{ep: ep, ap: p.Addr}, next: next}
}

func (n *Node) forgetDormant(id identity.ID) {
	g := n.guard()
	g.mu.Lock()
	delete(g.dormant, id)
	g.mu.Unlock()
}

// probeDormant probes each evicted peer once per silence bound until its
// descriptor expires.
func (n *Node) probeDormant(now time.Time, silence time.Duration) {
	type due struct {
		id   identity.ID
		addr peerAddr
	}
	var todo []due
	g := n.guard()
	g.mu.Lock()
	for id, d := range g.dormant {
		switch {
		case now.After(d.desc.Expires):
			delete(g.dormant, id)
		case !now.Before(d.next):
			d.next = now.Add(silence)
			todo = append(todo, due{id, d.addr})
		}
	}
	g.mu.Unlock()
	for _, d := range todo {
		if n.probe(d.addr, d.id, false) {
			n.stats.inc(EventRefreshProbes)
		}
	}
}
