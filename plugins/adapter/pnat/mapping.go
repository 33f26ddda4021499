package pnat

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errLimit     = errors.New("pnat: flow limit reached for this tunnel")
	errGone      = errors.New("pnat: mapping closed")
	errExhausted = errors.New("pnat: internal address pool exhausted")
)

// tunnel is the state of one Flow handle.
type tunnel struct {
	id     uint64
	maps   map[netip.Addr]*mapping // by inner source address
	nflows int
}

func (t *tunnel) allFlows() []*flow {
	var out []*flow
	for _, m := range t.maps {
		for f := range m.flows {
			out = append(out, f)
		}
	}
	return out
}

// mapping ties one (tunnel, inner source address) to its internal address.
type mapping struct {
	t               *tunnel
	inner, internal netip.Addr
	flows           map[*flow]struct{}
	last            atomic.Int64 // unix nanos of the last packet either way
	freed           bool         // guarded by Exit.mu
}

func (m *mapping) touch() { m.last.Store(now()) }

type flowKind int

const (
	kindTCP flowKind = iota
	kindUDP
	kindICMP
	kindDNS
)

// flowKey names a UDP, ICMP or DNS flow: the internal source (port or echo
// identifier) and the destination.
type flowKey struct {
	proto uint8
	src   netip.AddrPort
	dst   netip.AddrPort
}

// flow is one TCP connection, UDP 5-tuple, echo identifier or DNS session.
type flow struct {
	m    *mapping
	kind flowKind
	key  flowKey
	last atomic.Int64

	mu       sync.Mutex
	pc       net.PacketConn // ICMP flows: the ping socket
	aborted  bool
	closers  []func()
	released bool // guarded by Exit.mu
}

func (f *flow) touch() { f.last.Store(now()) }

// onAbort registers fn to run when the flow is aborted; if it already
// was, fn runs at once.
func (f *flow) onAbort(fn func()) {
	f.mu.Lock()
	if f.aborted {
		f.mu.Unlock()
		fn()
		return
	}
	f.closers = append(f.closers, fn)
	f.mu.Unlock()
}

// abort closes the flow's sockets; its goroutines then release it.
func (f *flow) abort() {
	f.mu.Lock()
	if f.aborted {
		f.mu.Unlock()
		return
	}
	f.aborted = true
	cl := f.closers
	f.closers = nil
	f.mu.Unlock()
	for _, fn := range cl {
		fn()
	}
}

// mappingFor returns the mapping of (tunnel, inner), making both if needed.
func (e *Exit) mappingFor(tid uint64, inner netip.Addr) (*mapping, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tid]
	if t == nil {
		t = &tunnel{id: tid, maps: make(map[netip.Addr]*mapping)}
		e.tunnels[tid] = t
		e.startJanitorLocked()
	}
	if m := t.maps[inner]; m != nil {
		m.touch()
		return m, nil
	}
	pool := e.pool4
	if inner.Is6() {
		pool = e.pool6
	}
	internal, ok := pool.alloc()
	if !ok {
		e.stats.poolExhausted.Add(1)
		if len(t.maps) == 0 {
			delete(e.tunnels, tid)
		}
		return nil, errExhausted
	}
	m := &mapping{t: t, inner: inner, internal: internal, flows: make(map[*flow]struct{})}
	m.touch()
	t.maps[inner] = m
	e.byInternal[internal] = m
	return m, nil
}

func (e *Exit) lookupInternal(a netip.Addr) *mapping {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byInternal[a]
}

// freeMappingLocked forgets m and returns its address to the pool.
func (e *Exit) freeMappingLocked(m *mapping) {
	if m.freed {
		return
	}
	m.freed = true
	delete(e.byInternal, m.internal)
	delete(m.t.maps, m.inner)
	if m.internal.Is4() {
		e.pool4.release(m.internal)
	} else {
		e.pool6.release(m.internal)
	}
}

// openFlow reserves a flow slot in m's tunnel.
func (e *Exit) openFlow(m *mapping, kind flowKind, key flowKey) (*flow, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m.freed || e.closed {
		return nil, errGone
	}
	if m.t.nflows >= e.cfg.maxFlows {
		e.stats.rejectedLimit.Add(1)
		return nil, errLimit
	}
	f := &flow{m: m, kind: kind, key: key}
	f.touch()
	m.flows[f] = struct{}{}
	m.t.nflows++
	if key != (flowKey{}) {
		e.flowsByKey[key] = f
	}
	e.stats.flowsOpened.Add(1)
	return f, nil
}

// flowByKey finds an open UDP, ICMP or DNS flow.
func (e *Exit) flowByKey(k flowKey) *flow {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flowsByKey[k]
}

// tunnelFull reports whether tunnel tid has no room for a new flow.
func (e *Exit) tunnelFull(tid uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tunnels[tid]
	return t != nil && t.nflows >= e.cfg.maxFlows
}

// releaseFlow returns f's slot; the mapping stays until it idles out.
func (e *Exit) releaseFlow(f *flow) {
	f.abort()
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.released {
		return
	}
	f.released = true
	delete(f.m.flows, f)
	f.m.t.nflows--
	if f.key != (flowKey{}) && e.flowsByKey[f.key] == f {
		delete(e.flowsByKey, f.key)
	}
	f.m.touch()
}

// The janitor expires idle flows and mappings. It runs only while there is
// a tunnel with mappings: it sleeps until the next flow or mapping could
// expire, the next host rescan (local.go) or, while a mapping has flows,
// the next tick (janitorTick, the ticker it had before), whichever is
// first. It ends when the last tunnel is gone, and mappingFor starts it
// again for the next one. An exit that carries nothing does not wake.

// janitorMin bounds how soon the janitor wakes again, so that a burst of
// expiries a few microseconds apart costs one round.
const janitorMin = 10 * time.Millisecond

// janitorTick is how often the janitor wakes while a mapping has flows: a
// quarter of the shorter idle timeout, between 10 ms and 5 s.
func (e *Exit) janitorTick() time.Duration {
	return max(min(min(e.cfg.idle, e.cfg.tcpIdle)/4, 5*time.Second), janitorMin)
}

// startJanitorLocked starts the janitor's loop unless it runs. Caller
// holds e.mu.
func (e *Exit) startJanitorLocked() {
	if e.janitorOn || e.closed || !e.opened {
		return
	}
	e.janitorOn = true
	e.wg.Add(1)
	go e.janitorLoop()
}

// janitor is the goroutine Open starts. No tunnel exists at Open, so it
// starts the loop only if one appeared since.
func (e *Exit) janitor() {
	defer e.wg.Done()
	e.mu.Lock()
	if len(e.tunnels) > 0 {
		e.startJanitorLocked()
	}
	e.mu.Unlock()
}

// janitorLoop runs while there is a tunnel (expire ends it).
func (e *Exit) janitorLoop() {
	defer e.wg.Done()
	var lastHostScan time.Time // the cache may be old: rescan in the first round
	t := time.NewTimer(janitorMin)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		next, more := e.expire(now())
		if !more {
			return
		}
		if time.Since(lastHostScan) >= hostScanEvery {
			lastHostScan = time.Now()
			e.rescanHost()
		}
		wait := min(time.Duration(next-now()), hostScanEvery-time.Since(lastHostScan))
		t.Reset(max(wait, janitorMin))
	}
}

// expire ends the flows and frees the mappings idle past their limits. It
// returns when the next one could expire (unix nanos) and whether any
// tunnel is left; with none it marks the janitor stopped, under the same
// lock mappingFor starts it under.
func (e *Exit) expire(nowNanos int64) (next int64, more bool) {
	var idle []*flow
	next = nowNanos + int64(max(e.cfg.idle, e.cfg.tcpIdle))
	e.mu.Lock()
	for tid, t := range e.tunnels {
		for _, m := range t.maps {
			for f := range m.flows {
				limit := e.cfg.idle
				if f.kind == kindTCP {
					limit = e.cfg.tcpIdle
				}
				if at := f.last.Load() + int64(limit); nowNanos > at {
					idle = append(idle, f)
				} else {
					next = min(next, at+1)
				}
			}
			// A mapping with flows stays. Their ends are not
			// signalled (releaseFlow only touches it), so while there
			// are flows the janitor also wakes every tick, as its
			// ticker did: a mapping is freed within a tick of idle
			// after its last flow.
			if len(m.flows) > 0 {
				next = min(next, nowNanos+int64(e.janitorTick()))
			} else {
				if at := m.last.Load() + int64(e.cfg.idle); nowNanos > at {
					e.freeMappingLocked(m)
				} else {
					next = min(next, at+1)
				}
			}
		}
		if len(t.maps) == 0 {
			delete(e.tunnels, tid)
		}
	}
	more = len(e.tunnels) > 0
	if !more {
		e.janitorOn = false
	}
	e.mu.Unlock()
	for _, f := range idle {
		f.mu.Lock()
		was := f.aborted // ended in an earlier round, not yet released: counted then
		f.mu.Unlock()
		if !was {
			e.stats.idleClosed.Add(1)
		}
		f.abort()
	}
	return next, more
}

// addrPool hands out internal addresses: fresh ones first, then freed ones
// oldest first, so a freed address rests as long as possible.
type addrPool struct {
	base       netip.Addr
	next, size uint64
	free       []netip.Addr
	skip       map[netip.Addr]bool
}

func newPool4(skip []netip.Addr) *addrPool {
	// 100.64.1.0 .. 100.127.255.254
	return newPool(netip.MustParseAddr("100.64.1.0"), 1<<22-256-1, skip)
}

func newPool6(skip []netip.Addr) *addrPool {
	return newPool(netip.MustParseAddr("fd7a:7a72:7a6e:ffff::1"), 1<<62, skip)
}

func newPool(base netip.Addr, size uint64, skip []netip.Addr) *addrPool {
	p := &addrPool{base: base, size: size, skip: make(map[netip.Addr]bool)}
	for _, a := range skip {
		p.skip[a] = true
	}
	return p
}

func (p *addrPool) alloc() (netip.Addr, bool) {
	for p.next < p.size {
		a := addOffset(p.base, p.next)
		p.next++
		if !p.skip[a] {
			return a, true
		}
	}
	if len(p.free) == 0 {
		return netip.Addr{}, false
	}
	a := p.free[0]
	p.free = p.free[1:]
	return a, true
}

func (p *addrPool) release(a netip.Addr) { p.free = append(p.free, a) }

func addOffset(base netip.Addr, off uint64) netip.Addr {
	if base.Is4() {
		b := base.As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(off))
		return netip.AddrFrom4(b)
	}
	b := base.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+off)
	return netip.AddrFrom16(b)
}
