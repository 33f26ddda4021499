package gossip

import (
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// maxSummaryPages bounds the SUMMARY pages answering one DIGEST, and so
// what a forged source address can draw to a victim (4 messages for 1).
const maxSummaryPages = 4

func (g *Gossip) handleLocked(now time.Time, msg discovery.Message, m *message) {
	switch m.typ {
	case typeDigest:
		g.onDigest(now, msg, m)
	case typeSummary:
		g.onSummary(now, msg, m)
	case typeRequest:
		g.onRequest(now, msg, m)
	case typeDescs:
		g.onDescs(now, msg, m)
	}
}

func sumsOf(m *message) (sums [numBuckets]uint32) {
	i := 0
	for b := range numBuckets {
		if m.buckets.has(b) {
			sums[b] = m.sums[i]
			i++
		}
	}
	return sums
}

// onDigest compares the sender's digest with ours and, where buckets
// differ, lists what we know in them.
func (g *Gossip) onDigest(now time.Time, msg discovery.Message, m *message) {
	g.stats["in_digest"]++
	mine := g.digestLocked(now)
	theirs, ours := sumsOf(m), sumsOf(mine)
	var diff []int
	for b := range numBuckets {
		if m.buckets.has(b) != mine.buckets.has(b) || theirs[b] != ours[b] {
			diff = append(diff, b)
		}
	}
	if len(diff) == 0 {
		g.stats["digest_match"]++
		return
	}
	if g.introduceLocked(msg, m, mine) {
		return
	}
	// Start at a random differing bucket so that, when the pages run
	// out, later rounds cover the rest.
	start := g.rng.IntN(len(diff))
	diff = append(diff[start:], diff[:start]...)

	reply := g.nonces.Uint64()
	g.issueLocked(msg.Addr, reply, m.nonce)
	page := &message{typ: typeSummary, nonce: m.nonce, reply: reply}
	pages := 0
	flush := func() bool {
		slices.SortFunc(page.entries, func(a, b summaryEntry) int { return comparePrefix(a.prefix, b.prefix) })
		ok := g.queueLocked(msg.Addr, msg.Transport, page)
		pages++
		page = &message{typ: typeSummary, nonce: m.nonce, reply: reply}
		return ok && pages < maxSummaryPages
	}
	for _, b := range diff {
		list := g.bucketListLocked(now, b)
		if len(page.entries)+len(list) > maxSummaryEntries && len(page.entries) > 0 {
			if !flush() {
				return
			}
		}
		if len(list) > maxSummaryEntries {
			// Too many to list completely: list some, without claiming
			// the bucket, so the other side only pulls from it.
			// A random window, so that successive digests list
			// different parts of the bucket.
			start := g.rng.IntN(len(list))
			for i := range maxSummaryEntries {
				page.entries = append(page.entries, list[(start+i)%len(list)])
			}
			if !flush() {
				return
			}
			continue
		}
		page.buckets.set(b)
		page.entries = append(page.entries, list...)
	}
	if len(page.entries) > 0 || page.buckets != (bitmap{}) {
		flush()
	}
}

// introductions is how many descriptors a node that knows little is sent
// in answer to its digest instead of a summary.
const introductions = 8

// introduceLocked answers the digest of a node that knows less than a
// quarter of what we know (a newcomer, typically at the bootstrap node)
// with a few random descriptors, ours among them, instead of summary
// pages. A summary of everything would make the newcomer request
// everything from us, and with one bootstrap address for all, the
// bootstrap node's budget would serve a handful of newcomers a round
// while the rest learn nothing; a few introductions each give every
// newcomer other peers to gossip with, and the epidemic does the rest.
func (g *Gossip) introduceLocked(msg discovery.Message, m, mine *message) bool {
	theirs, ours := len(m.sums), len(mine.sums)
	if theirs*4 >= ours || len(g.viewList) < introductions {
		return false
	}
	out := [][]byte{g.self.raw}
	picked := map[int]bool{}
	for tries := 0; len(out) < introductions && tries < 4*introductions; tries++ {
		i := g.rng.IntN(len(g.viewList))
		if !picked[i] {
			picked[i] = true
			out = append(out, g.viewList[i].raw)
		}
	}
	g.stats["introductions"]++
	g.queueDescsLocked(msg, m.nonce, out)
	return true
}

// onSummary answers a SUMMARY of the buckets where our digest differed:
// request what the other side has newer, push what it lacks.
func (g *Gossip) onSummary(now time.Time, msg discovery.Message, m *message) {
	if _, ok := g.solicited(msg.Addr, m.nonce); !ok {
		g.stats["drop_unsolicited"]++
		return
	}
	g.stats["in_summary"]++
	listed := make(map[prefix]summaryEntry, len(m.entries))
	var want []prefix
	var buckets bitmap // where to look for what the other side lacks
	for _, e := range m.entries {
		listed[e.prefix] = e
		buckets.set(bucketOfPrefix(e.prefix))
		if e.flags&flagSendable == 0 {
			continue
		}
		if k, ok := g.lookupLocked(now, e.prefix); ok && k.published >= e.published {
			continue
		}
		if r, ok := g.asked[e.prefix]; ok && g.round-r < askRounds {
			continue
		}
		if len(want) < maxRequestIDs {
			want = append(want, e.prefix)
			g.asked[e.prefix] = g.round
		}
	}
	var push [][]byte
	for b := range numBuckets {
		if !buckets.has(b) && !m.buckets.has(b) {
			continue
		}
		g.selfLiveLocked(now)
		for p, k := range g.kb[b] {
			if !k.sendable {
				continue
			}
			e, ok := listed[p]
			if ok && e.published >= k.published || !ok && !m.buckets.has(b) {
				continue
			}
			push = append(push, k.e.raw)
		}
	}
	if len(want) > 0 {
		g.queueLocked(msg.Addr, msg.Transport, &message{typ: typeRequest, nonce: m.reply, prefixes: want})
	}
	g.rng.Shuffle(len(push), func(i, j int) { push[i], push[j] = push[j], push[i] })
	g.queueDescsLocked(msg, m.reply, push)
}

// onRequest sends the descriptors asked for, if we gossip them.
func (g *Gossip) onRequest(now time.Time, msg discovery.Message, m *message) {
	n, ok := g.solicited(msg.Addr, m.nonce)
	if !ok {
		g.stats["drop_unsolicited"]++
		return
	}
	g.stats["in_request"]++
	var out [][]byte
	for _, p := range m.prefixes {
		if k, ok := g.lookupLocked(now, p); ok && k.sendable {
			out = append(out, k.e.raw)
		}
	}
	g.queueDescsLocked(msg, n.theirs, out)
}

// onDescs verifies each descriptor and proposes the new ones.
func (g *Gossip) onDescs(now time.Time, msg discovery.Message, m *message) {
	if _, ok := g.solicited(msg.Addr, m.nonce); !ok {
		g.stats["drop_unsolicited"]++
		return
	}
	g.stats["in_descs"]++
	for _, raw := range m.descs {
		g.learnLocked(now, raw)
	}
}

// learnLocked proposes a descriptor from another node if it verifies and
// is newer than what we have. Our own, newer than ours, replaces ours.
func (g *Gossip) learnLocked(now time.Time, raw []byte) {
	if id, pub, ok := peek(raw); ok && g.have(id, pub) {
		g.stats["duplicate"]++
		return
	}
	d, err := g.parse(raw, now)
	if err != nil {
		g.stats["drop_invalid_descriptor"]++
		return
	}
	id, pub := d.ID(), wireTime(d.Published.Unix())
	if id == g.self.id {
		if pub > g.self.published {
			g.setSelfLocked(d)
			g.stats["self_refreshed"]++
		}
		return
	}
	if e := g.view[id]; e != nil && e.published >= pub {
		g.stats["duplicate"]++
		return
	}
	if c := g.cands[id]; c != nil && c.published >= pub {
		g.stats["duplicate"]++
		return
	}
	c := &candidate{published: pub, expires: d.Expires, proposed: now, desc: d}
	g.cands[id] = c
	g.expiresAtLocked(g.candidateDeadline(c))
	g.changedLocked(id)
	g.proposeLocked(discovery.Proposal{Descriptor: d.Encoded()})
	g.stats["proposed"]++
}

// have reports whether we already gossip or proposed id at published or
// later.
func (g *Gossip) have(id identity.ID, published uint32) bool {
	if id == g.self.id {
		return g.self.published >= published
	}
	if e := g.view[id]; e != nil && e.published >= published {
		return true
	}
	c := g.cands[id]
	return c != nil && c.published >= published
}

// queueDescsLocked packs descriptors into as few DESCS messages as fit,
// until the round's budget runs out.
func (g *Gossip) queueDescsLocked(to discovery.Message, echo uint64, raws [][]byte) {
	m := &message{typ: typeDescs, nonce: echo}
	size := descsOverhead
	for _, raw := range raws {
		if size+2+len(raw) > discovery.MaxMessage || len(m.descs) == 255 {
			if !g.queueLocked(to.Addr, to.Transport, m) {
				return
			}
			m = &message{typ: typeDescs, nonce: echo}
			size = descsOverhead
		}
		m.descs = append(m.descs, raw)
		size += 2 + len(raw)
	}
	if len(m.descs) > 0 {
		g.queueLocked(to.Addr, to.Transport, m)
	}
}

func comparePrefix(a, b prefix) int {
	switch {
	case prefixLess(a, b):
		return -1
	case prefixLess(b, a):
		return 1
	}
	return 0
}
