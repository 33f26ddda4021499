// Package mimic computes Tarzan's mimic sets: the small, verifiable,
// pseudo-random set of peers each node exchanges traffic (and cover
// traffic) with during one epoch. Traffic never crosses a link between two
// nodes that are not mimics.
//
// # Selection
//
// Anyone who knows the view (the admitted members and their addresses) can
// recompute any node's choice, so B accepts A's link after checking that A
// really chose B, or B chose A: mimicry is symmetric, and each node ends
// with about 2k mimics.
//
// Mimic i (i = 1..k) of node A in epoch e is found by a consistent-hash
// walk down the domain hierarchy of package domain (all integers
// big-endian, H = SHA-256, D = A's top domain, its /16 or /32):
//
//	h0 = H("tarzan-mimic-v2" || D address bytes (4 or 16) || uint8(D bits) || uint32(i) || uint64(e))
//	h  = h0                      on attempt 0
//	h  = H(h0 || uint32(a))      on attempt a >= 1
//	top    = successor of h[0:8]     on the ring of top domains (/16, /32)
//	s      = H(h || A.ID)
//	middle = successor of s[0:8]     on top's ring of middle domains (/24, /48)
//	host   = successor of s[8:16]    on middle's ring of hosts
//
// Which top domains A chooses depends on D, the view and the epoch, not
// on A's ID: IDs are free, and a node whose ID decided its domains could
// try IDs until every mimic it chose was a colluder (DECISIONS, mimic
// grinding). Every node of one /16 chooses the same top domains; their
// IDs spread them over the hosts there.
//
// A position on a ring is the first 8 bytes of a hash read as a uint64;
// the successor is the first point at or after it, wrapping around. Each
// domain and each host is placed on its ring at V = 64 points, the first V
// outputs of SplitMix64 seeded with the first 8 bytes of
//
//	H("tarzan-dom"  || uint64(e) || prefix address bytes (4 or 16) || uint8(prefix bits))
//	H("tarzan-host" || uint64(e) || ID)
//
// Several points per element keep each one's share of its ring close to
// 1/n: with a single point the shares are exponentially distributed, and
// of two domains one could get 90% of the picks. Points at the same
// position sort by the remaining 24 bytes of their seed hashes.
//
// An attempt is rejected, and the next attempt made, when its top domain
// is D (whenever the view holds another top domain) or one an earlier
// slot chose (while any top domain A may choose is left unchosen), or
// when its host is A or a mimic A already chose. The first two rules
// depend only on D, so a node's top domains are those of every node in
// D; the last applies only in views with no more than k top domains
// besides D. After 64 rejected attempts mimic i is skipped. A node
// therefore has fewer than k chosen mimics only when the view has fewer
// than k eligible hosts, or, very rarely, when the few eligible domains
// left are hard to hit.
//
// Selection is uniform over domains, not nodes: one node alone in its /16
// is as likely to be chosen as all of the hundred nodes in another /16
// together. Because every level is a consistent-hash ring, two views that
// differ by a few members agree on almost every choice.
package mimic
