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
	dg := *g.digestLocked(now) // a copy: the nonce differs per target
	for _, t := range g.targetsLocked() {
		nonce := g.rng.Uint64()
		g.issueLocked(t.addr, nonce, 0)
		dg.nonce = nonce
		g.queueLocked(t.addr, t.transport, &dg)
	}
}

func (g *Gossip) live(now time.Time, expires time.Time) bool {
	return now.Before(expires.Add(g.opts.expiry))
}

// candidateDeadline is when a candidate is forgotten.
func (g *Gossip) candidateDeadline(c *candidate) time.Time {
	t := c.proposed.Add(candidateRounds*g.opts.interval + time.Nanosecond)
	if e := c.expires.Add(g.opts.expiry); e.Before(t) {
		return e
	}
	return t
}

// expiresAtLocked lowers nextExpire to t.
func (g *Gossip) expiresAtLocked(t time.Time) {
	if g.nextExpire.IsZero() || t.Before(g.nextExpire) {
		g.nextExpire = t
	}
}

func (g *Gossip) expireLocked(now time.Time) {
	// Scanning a thousand entries every round was a twentieth of a
	// simulated node's CPU: scan only once something may have expired.
	if !g.nextExpire.IsZero() && !now.Before(g.nextExpire) {
		var next time.Time
		soonest := func(t time.Time) {
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		for id, e := range g.view {
			if !g.live(now, e.expires) {
				g.delViewLocked(id)
				g.stats["expired"]++
			} else {
				soonest(e.expires.Add(g.opts.expiry))
			}
		}
		for id, c := range g.cands {
			if !g.live(now, c.expires) || now.Sub(c.proposed) > candidateRounds*g.opts.interval {
				delete(g.cands, id)
				g.changedLocked()
			} else {
				soonest(g.candidateDeadline(c))
			}
		}
		g.nextExpire = next
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
	// fanout distinct entries at random (a partial Fisher-Yates shuffle
	// of the indexes would allocate per round; a few retries do not).
	n := len(g.viewList)
	picked := make(map[int]bool, g.opts.fanout)
	for tries := 0; len(picked) < min(g.opts.fanout, n) && tries < 4*g.opts.fanout+n; tries++ {
		i := g.rng.IntN(n)
		if picked[i] {
			continue
		}
		picked[i] = true
		if ap, tr, ok := g.addrFor(g.viewList[i]); ok {
			pool = append(pool, target{ap, tr})
		}
	}
	if g.round <= bootstrapRounds || g.round%8 == 1 {
		for _, ap := range g.opts.bootstrap {
			if !g.selfAddr[ap] && g.addrRefs[ap] == 0 {
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

// changedLocked drops the cached digest and summaries: call it whenever
// the view, the candidates or our own descriptor change.
func (g *Gossip) changedLocked() {
	g.digest, g.known, g.knownBuckets = nil, nil, nil
}

// digestLocked summarises what this node gossips. The result is shared:
// callers must not modify it.
func (g *Gossip) digestLocked(now time.Time) *message {
	live := g.live(now, g.self.expires)
	if g.digest != nil && g.digestLive == live {
		return g.digest
	}
	var sums [numBuckets]uint32
	var present bitmap
	g.gossiped(now, func(e *entry) {
		b := bucketOf(e.id)
		present.set(b)
		sums[b] ^= e.sum
	})
	m := &message{typ: typeDigest, buckets: present}
	for b := range numBuckets {
		if present.has(b) {
			m.sums = append(m.sums, sums[b])
		}
	}
	g.digest, g.digestLive = m, live
	return m
}

// known is what this node knows of one ID, for summaries: the newest
// version and whether it would send it.
type known struct {
	e         *entry // nil if only a candidate
	published uint32
	sendable  bool
}

// knownLocked maps every ID prefix we gossip or proposed to what we know
// of it. The result is shared: callers must not modify it.
func (g *Gossip) knownLocked(now time.Time) map[prefix]known {
	live := g.live(now, g.self.expires)
	if g.known != nil && g.knownLive == live {
		return g.known
	}
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
	g.known, g.knownLive, g.knownBuckets = out, live, nil
	return out
}

// knownBucketsLocked is knownLocked as summary entries, by bucket. The
// result is shared: callers must not modify it.
func (g *Gossip) knownBucketsLocked(now time.Time) *[numBuckets][]summaryEntry {
	known := g.knownLocked(now) // may reset knownBuckets
	if g.knownBuckets != nil {
		return g.knownBuckets
	}
	var by [numBuckets][]summaryEntry
	for p, k := range known {
		var flags byte
		if k.sendable {
			flags = flagSendable
		}
		b := bucketOfPrefix(p)
		by[b] = append(by[b], summaryEntry{prefix: p, published: k.published, flags: flags})
	}
	g.knownBuckets = &by
	return g.knownBuckets
}
