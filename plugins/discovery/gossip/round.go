package gossip

import (
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

const (
	// nonceRounds is how many rounds a nonce stays valid for replies.
	nonceRounds = 3
	// noncesPerAddr bounds the nonces kept per address.
	noncesPerAddr = 4
	// askRounds is how long an ID once requested is not requested again
	// from anyone (its answer may still be on the way).
	askRounds = 2
	// candidateRounds is how long a proposed descriptor the core has not
	// admitted is remembered (and not proposed again).
	candidateRounds = 30
	// bootstrapRounds is how long a node tries its bootstrap addresses
	// every round.
	bootstrapRounds = 30
)

// Round runs one gossip round: forget what expired, propose refresh
// probes, and send a DIGEST to fanout random peers. The backend calls it
// every interval after Start; tests call it directly.
func (g *Gossip) Round() {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.self == nil {
		return
	}
	g.round++
	g.budget = g.opts.maxBytes
	g.expireLocked(now)
	g.refreshLocked(now)
	dg := g.digestLocked(now)
	for _, t := range g.targetsLocked() {
		nonce := g.rng.Uint64()
		g.issueLocked(t.addr, nonce, 0)
		dg.nonce = nonce
		g.queueLocked(t.addr, t.transport, dg)
	}
}

func (g *Gossip) live(now time.Time, expires time.Time) bool {
	return now.Before(expires.Add(g.opts.expiry))
}

func (g *Gossip) expireLocked(now time.Time) {
	for id, e := range g.view {
		if !g.live(now, e.expires) {
			delete(g.view, id)
			g.stats["expired"]++
		}
	}
	for id, c := range g.cands {
		if !g.live(now, c.expires) || now.Sub(c.proposed) > candidateRounds*g.opts.interval {
			delete(g.cands, id)
		}
	}
	for a, list := range g.issued {
		keep := list[:0]
		for _, n := range list {
			if g.round-n.round < nonceRounds {
				keep = append(keep, n)
			}
		}
		if len(keep) == 0 {
			delete(g.issued, a)
		} else {
			g.issued[a] = keep
		}
	}
	for id, r := range g.asked {
		if g.round-r >= askRounds {
			delete(g.asked, id)
		}
	}
}

// refreshLocked proposes a probe of peers whose descriptor is past its
// half-life. The core re-signs its descriptor at half-life but tells only
// those who probe it; the proof carries the new descriptor, the core
// admits it and reports it, and gossip spreads it (including back to its
// owner's backend, which learns its own new descriptor that way).
func (g *Gossip) refreshLocked(now time.Time) {
	n := 0
	for _, e := range g.view {
		if n >= g.opts.fanout {
			return
		}
		due := e.expires.Add(-e.lifetime/2 + e.lifetime/16)
		if now.Before(due) || now.Sub(e.refreshed) < e.lifetime/8 {
			continue
		}
		if ap, tr, ok := g.addrFor(e); ok {
			e.refreshed = now
			g.proposeLocked(discovery.Proposal{Addr: ap, Transport: tr})
			g.stats["refresh_probes"]++
			n++
		}
	}
}

// addrFor picks the peer's address on the first of our own transports it
// also has.
func (g *Gossip) addrFor(e *entry) (netip.AddrPort, string, bool) {
	for _, mine := range g.self.addrs {
		for _, a := range e.addrs {
			if a.Transport == mine.Transport {
				return a.AddrPort, a.Transport, true
			}
		}
	}
	return netip.AddrPort{}, "", false
}

type target struct {
	addr      netip.AddrPort
	transport string
}

// targetsLocked picks fanout random admitted peers, plus every bootstrap
// address that is not (yet) an admitted peer's: a node keeps knocking at
// its bootstrap until the two have admitted each other, because a few
// lost messages could otherwise leave a small group that only knows
// itself. After the first bootstrapRounds rounds, an unanswered
// bootstrap (perhaps gone for good) is tried every 8th round only.
func (g *Gossip) targetsLocked() []target {
	var pool []target
	known := map[netip.AddrPort]bool{}
	for _, e := range g.view {
		for _, a := range e.addrs {
			known[a.AddrPort] = true
		}
		if ap, tr, ok := g.addrFor(e); ok {
			pool = append(pool, target{ap, tr})
		}
	}
	// Map order is not random enough to pick from; shuffle.
	g.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	if len(pool) > g.opts.fanout {
		pool = pool[:g.opts.fanout]
	}
	if g.round <= bootstrapRounds || g.round%8 == 1 {
		for _, ap := range g.opts.bootstrap {
			if !g.selfAddr[ap] && !known[ap] {
				pool = append(pool, target{ap, ""})
			}
		}
	}
	return pool
}

func (g *Gossip) issueLocked(to netip.AddrPort, mine, theirs uint64) {
	list := append(g.issued[to], issued{mine: mine, theirs: theirs, round: g.round})
	if len(list) > noncesPerAddr {
		list = list[len(list)-noncesPerAddr:]
	}
	g.issued[to] = list
}

// solicited finds the nonce this node issued to from that a reply echoes.
func (g *Gossip) solicited(from netip.AddrPort, echo uint64) (issued, bool) {
	for _, n := range g.issued[from] {
		if n.mine == echo {
			return n, true
		}
	}
	return issued{}, false
}

// gossiped calls f for this node's own descriptor and every admitted one
// that has not expired: what the digest covers and what may be sent.
func (g *Gossip) gossiped(now time.Time, f func(*entry)) {
	if g.live(now, g.self.expires) {
		f(g.self)
	}
	for _, e := range g.view {
		f(e)
	}
}

// digestLocked summarises what this node gossips.
func (g *Gossip) digestLocked(now time.Time) *message {
	var sums [numBuckets]uint32
	var present bitmap
	g.gossiped(now, func(e *entry) {
		b := bucketOf(e.id)
		present.set(b)
		sums[b] ^= entrySum(e.id, e.published)
	})
	m := &message{typ: typeDigest, buckets: present}
	for b := range numBuckets {
		if present.has(b) {
			m.sums = append(m.sums, sums[b])
		}
	}
	return m
}

// known is what this node knows of one ID, for summaries: the newest
// version and whether it would send it.
type known struct {
	e         *entry // nil if only a candidate
	published uint32
	sendable  bool
}

func (g *Gossip) knownLocked(now time.Time) map[prefix]known {
	out := make(map[prefix]known, len(g.view)+len(g.cands)+1)
	g.gossiped(now, func(e *entry) {
		out[prefixOf(e.id)] = known{e: e, published: e.published, sendable: true}
	})
	for id, c := range g.cands {
		p := prefixOf(id)
		if k, ok := out[p]; !ok || c.published > k.published {
			out[p] = known{e: k.e, published: c.published}
		}
	}
	return out
}
