package gossip

import (
	"github.com/tarzan-net/tarzan/core/identity"
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
	// admitted is remembered (and not proposed again). Longer than the
	// core's wait before probing an address again (5 s); short, because
	// a lost probe or proof keeps its peer out of the view until then
	// (30 rounds made 400 simulated nodes converge at a third of the
	// speed: bursts of probes lose a few).
	candidateRounds = 6
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
	g.rounds.Store(g.round)
	g.budget = g.opts.maxBytes
	g.expireLocked(now)
	g.refreshLocked(now)
	dg := *g.digestLocked(now) // a copy: the nonce differs per target
	for _, t := range g.targetsLocked() {
		nonce := g.nonces.Uint64()
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
				g.changedLocked(id)
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
	// Scan only once some entry may be due: a scan of every entry each
	// round was a twelfth of a simulated node's CPU at 1,000 peers.
	if g.nextRefresh.IsZero() || now.Before(g.nextRefresh) {
		return
	}
	n := 0
	var next time.Time
	for _, e := range g.view {
		if n >= g.opts.fanout {
			// Out of probes this round: look again next round.
			next = now
			break
		}
		at := refreshAt(e)
		if now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		if ap, tr, ok := g.addrFor(e); ok {
			e.refreshed = now
			g.proposeLocked(discovery.Proposal{Addr: ap, Transport: tr})
			g.stats["refresh_probes"]++
			n++
		}
		if at := refreshAt(e); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	g.nextRefresh = next
}

// refreshAt is when e is next due for a refresh probe: past 9/16 of its
// lifetime, and an eighth of a lifetime after the last one.
func refreshAt(e *entry) time.Time {
	due := e.expires.Add(-e.lifetime/2 + e.lifetime/16)
	if again := e.refreshed.Add(e.lifetime / 8); again.After(due) {
		return again
	}
	return due
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

// The digest and the summaries are kept up to date per descriptor as the
// view, the candidates and our own descriptor change, instead of being
// recomputed from everything for each message: at a thousand peers that
// recomputation was a quarter of a node's CPU.

// changedLocked updates what is known of id after the view, the
// candidates or our own descriptor changed for it.
func (g *Gossip) changedLocked(id identity.ID) {
	g.digest = nil
	g.news++
	select {
	case g.newsWake <- struct{}{}:
	default:
	}
	p := prefixOf(id)
	b := bucketOfPrefix(p)
	g.kbListOK[b] = false
	var k known
	have := false
	switch {
	case g.self != nil && id == g.self.id:
		if g.selfKnownLive {
			k, have = known{e: g.self, published: g.self.published, sendable: true}, true
		}
	default:
		if e := g.view[id]; e != nil {
			k, have = known{e: e, published: e.published, sendable: true}, true
		}
	}
	if c := g.cands[id]; c != nil && (!have || c.published > k.published) {
		k, have = known{e: k.e, published: c.published}, true
	}
	if g.kb[b] == nil {
		g.kb[b] = map[prefix]known{}
	}
	if have {
		g.kb[b][p] = k
	} else {
		delete(g.kb[b], p)
	}
}

// selfLiveLocked brings our own entry in line with whether our descriptor
// is still live (it is gossiped only while it is).
func (g *Gossip) selfLiveLocked(now time.Time) {
	if live := g.live(now, g.self.expires); live != g.selfKnownLive {
		g.selfKnownLive = live
		g.changedLocked(g.self.id)
	}
}

// digestLocked summarises what this node gossips. The result is shared:
// callers must not modify it.
func (g *Gossip) digestLocked(now time.Time) *message {
	g.selfLiveLocked(now)
	if g.digest != nil {
		return g.digest
	}
	sums := g.vsum
	var present bitmap
	for b := range numBuckets {
		if g.vcount[b] > 0 {
			present.set(b)
		}
	}
	if g.selfKnownLive {
		b := bucketOf(g.self.id)
		present.set(b)
		sums[b] ^= g.self.sum
	}
	m := &message{typ: typeDigest, buckets: present}
	for b := range numBuckets {
		if present.has(b) {
			m.sums = append(m.sums, sums[b])
		}
	}
	g.digest = m
	return m
}

// known is what this node knows of one ID, for summaries: the newest
// version and whether it would send it.
type known struct {
	e         *entry // nil if only a candidate
	published uint32
	sendable  bool
}

// lookupLocked returns what we know of the ID with prefix p.
func (g *Gossip) lookupLocked(now time.Time, p prefix) (known, bool) {
	g.selfLiveLocked(now)
	k, ok := g.kb[bucketOfPrefix(p)][p]
	return k, ok
}

// bucketListLocked is what we know in bucket b as summary entries. The
// result is shared: callers must not modify it.
func (g *Gossip) bucketListLocked(now time.Time, b int) []summaryEntry {
	g.selfLiveLocked(now)
	if g.kbListOK[b] {
		return g.kbList[b]
	}
	list := g.kbList[b][:0]
	for p, k := range g.kb[b] {
		var flags byte
		if k.sendable {
			flags = flagSendable
		}
		list = append(list, summaryEntry{prefix: p, published: k.published, flags: flags})
	}
	g.kbList[b], g.kbListOK[b] = list, true
	return list
}
