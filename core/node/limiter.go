package node

import (
	"net/netip"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// admissionGuard holds the per-source limits and the liveness state of a
// node (AdmissionLimits). It is made on first use, from the options.
type admissionGuard struct {
	once       sync.Once
	probes     *sourceLimiter // per source
	probesAll  *sourceLimiter // all sources together (one bucket)
	handshakes *sourceLimiter // per source

	mu           sync.Mutex
	nextLiveness time.Time
	dormant      map[identity.ID]*dormantPeer // evicted, re-probed while their descriptors are valid
}

func (n *Node) guard() *admissionGuard {
	g := &n.admission
	g.once.Do(func() {
		o := &n.opts.AdmissionLimits
		g.probes = newSourceLimiter(o.ProbeRate, o.ProbeBurst, o.LimiterSources)
		g.probesAll = newSourceLimiter(o.ProbeGlobalRate, o.ProbeGlobalBurst, 1)
		g.handshakes = newSourceLimiter(o.HandshakeRate, o.HandshakeBurst, o.LimiterSources)
		g.dormant = map[identity.ID]*dormantPeer{}
	})
	return g
}

// allowProbe reports whether a probe from src may be answered: its
// source's budget first, so that one source's flood does not use up the
// global budget everyone shares, then the global one.
func (n *Node) allowProbe(src netip.AddrPort, now time.Time) bool {
	g := n.guard()
	return g.probes.allow(sourceKey(src), now) && g.probesAll.allow(netip.AddrPort{}, now)
}

// sourceLimiter is a set of token buckets, one per source. Checking one
// costs a map lookup under a lock: nothing an attacker can make expensive.
// Memory is bounded: past max sources, buckets that have refilled (idle
// sources) are swept, and if none has, new sources share one overflow
// bucket until some do.
type sourceLimiter struct {
	rate, burst float64 // rate < 0: no limit
	max         int

	mu       sync.Mutex
	buckets  map[netip.AddrPort]*tokenBucket
	overflow tokenBucket
	swept    time.Time
}

// sweepEvery bounds how often a full limiter scans for idle buckets, so a
// flood of new sources costs one scan per interval, not one per datagram.
const sweepEvery = 100 * time.Millisecond

func newSourceLimiter(rate float64, burst, max int) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: float64(burst), max: max, buckets: map[netip.AddrPort]*tokenBucket{}}
}

// allow takes a token from key's bucket, reporting whether there was one.
func (s *sourceLimiter) allow(key netip.AddrPort, now time.Time) bool {
	if s.rate < 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= s.max && now.Sub(s.swept) >= sweepEvery {
			s.sweepLocked(now)
		}
		if len(s.buckets) >= s.max {
			b = &s.overflow
		} else {
			b = &tokenBucket{tokens: s.burst, at: now}
			s.buckets[key] = b
		}
	}
	return b.take(now, s.rate, s.burst)
}

// sweepLocked forgets buckets that are full again: their sources have been
// idle long enough that a fresh bucket is the same.
func (s *sourceLimiter) sweepLocked(now time.Time) {
	s.swept = now
	for k, b := range s.buckets {
		if b.level(now, s.rate, s.burst) >= s.burst {
			delete(s.buckets, k)
		}
	}
}

// len is how many sources have a bucket (tests).
func (s *sourceLimiter) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets)
}

// tokenBucket is one source's budget.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

func (b *tokenBucket) level(now time.Time, rate, burst float64) float64 {
	if b.at.IsZero() {
		return burst
	}
	if dt := now.Sub(b.at); dt > 0 {
		return min(burst, b.tokens+rate*dt.Seconds())
	}
	return b.tokens
}

func (b *tokenBucket) take(now time.Time, rate, burst float64) bool {
	b.tokens = b.level(now, rate, burst)
	if now.After(b.at) {
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sourceKey is the unit one budget covers: an IPv4 address, or an IPv6
// /64 (what one host or site gets; addresses within it are free to an
// attacker).
func sourceKey(ap netip.AddrPort) netip.AddrPort {
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	return netip.AddrPortFrom(ip, 0)
}
