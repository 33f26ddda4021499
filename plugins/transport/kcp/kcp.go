package kcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/plugins/transport/internal/rxqueue"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Name is the transport's registered name.
const Name = "kcp"

// Per-datagram overhead. Every KCP segment has a 24-byte header; with FEC
// on, kcp-go adds a 6-byte FEC header and a 2-byte length to every packet,
// and sends parity packets besides.
const (
	SegmentOverhead = 24
	FECOverhead     = 8
)

// PathMTU is the UDP payload a 1500-byte path carries without
// fragmentation over IPv6 (1500 − 40 − 8); IPv4 carries 20 bytes more.
const PathMTU = 1452

// MaxPayload returns the largest datagram one KCP segment carries when
// packets are at most mtu bytes of UDP payload, with or without FEC.
// Larger datagrams are refused: KCP would split them into several
// messages.
func MaxPayload(mtu int, fec bool) int {
	n := mtu - SegmentOverhead
	if fec {
		n -= FECOverhead
	}
	return n
}

var _ transport.Factory = New

// Stats are the transport's counters since New.
type Stats struct {
	Sessions   uint64 // KCP sessions opened (either side)
	Replaced   uint64 // sessions replaced: peer restart or simultaneous open
	Candidates uint64 // new sessions run beside a live one until it proves itself (receive.go)
	Expired    uint64 // sessions closed for silence
	SendDrops  uint64 // datagrams dropped before KCP: queue full or waited longer than max_delay_ms
	InputDrops uint64 // received packets dropped: no session could take them, or a full queue
	Oversize   uint64 // datagrams refused by WriteBatch or ReadBatch for size
}

type counters struct {
	sessions, replaced, candidates, expired, sendDrops, inputDrops, oversize atomic.Uint64
}

// options are the parsed plugin options; see doc.go.
type options struct {
	fecData, fecParity int
	nodelay            bool
	interval           int // ms
	window             int // segments
	mtu                int // UDP payload bytes
	queue              int // datagrams waiting per peer before KCP
	maxDelay           time.Duration
	idleTimeout        time.Duration
	replaceAfter       time.Duration // silence of a live session before a candidate replaces it
}

func (o options) fec() bool       { return o.fecData > 0 && o.fecParity > 0 }
func (o options) maxPayload() int { return MaxPayload(o.mtu, o.fec()) }

// kcpMTU is the MTU to give kcp-go. Since kcp-go v5.7 its SetMtu counts
// the FEC header itself (it sizes the whole UDP payload), so this is the
// path's MTU unchanged; before v5.7 the transport subtracted the header.
func (o options) kcpMTU() int { return o.mtu }

func defaultOptions() options {
	return options{
		fecData: 10, fecParity: 3, nodelay: true, interval: 10, window: 256, mtu: PathMTU,
		queue: 1024, maxDelay: 250 * time.Millisecond, idleTimeout: 60 * time.Second,
	}
}

// New returns an unbound KCP transport configured by options; it is a
// transport.Factory. Unknown option keys are rejected.
func New(opts map[string]string) (transport.Transport, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	t := &kcpTransport{
		opts:  o,
		done:  make(chan struct{}),
		peers: make(map[netip.AddrPort]*peer),
		cands: make(map[netip.AddrPort]*peer),
	}
	t.rx = &rxqueue.Queue{C: make(chan rxqueue.Datagram, 4096), Pool: &bufPool, Oversize: &t.stats.oversize}
	return t, nil
}

func parseOptions(m map[string]string) (options, error) {
	o := defaultOptions()
	nodelay := 1
	maxDelay, idle := int(o.maxDelay/time.Millisecond), int(o.idleTimeout/time.Millisecond)
	replaceAfter := -1 // default: a quarter of idle_timeout_ms
	known := map[string]struct {
		dst      *int
		min, max int
	}{
		"fec_data":         {&o.fecData, 0, 128},
		"fec_parity":       {&o.fecParity, 0, 128},
		"nodelay":          {&nodelay, 0, 1},
		"interval":         {&o.interval, 10, 5000},
		"window":           {&o.window, 1, 32768},
		"mtu":              {&o.mtu, 576, 1500},
		"queue":            {&o.queue, 1, 1 << 16},
		"max_delay_ms":     {&maxDelay, 1, 60_000},
		"idle_timeout_ms":  {&idle, 100, 3_600_000},
		"replace_after_ms": {&replaceAfter, 0, 3_600_000},
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad key first every time
	for _, k := range keys {
		opt, ok := known[k]
		if !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return options{}, fmt.Errorf("kcp: unknown option %q (known: %s)", k, strings.Join(names, ", "))
		}
		v, err := strconv.Atoi(strings.TrimSpace(m[k]))
		if err != nil || v < opt.min || v > opt.max {
			return options{}, fmt.Errorf("kcp: option %s = %q: want an integer in %d..%d", k, m[k], opt.min, opt.max)
		}
		*opt.dst = v
	}
	if (o.fecData == 0) != (o.fecParity == 0) {
		return options{}, fmt.Errorf("kcp: options fec_data = %d, fec_parity = %d: set both or neither to 0", o.fecData, o.fecParity)
	}
	if o.fecData+o.fecParity > 256 {
		return options{}, fmt.Errorf("kcp: fec_data + fec_parity = %d: at most 256 shards", o.fecData+o.fecParity)
	}
	if o.maxPayload() < transport.MaxDatagram {
		return options{}, fmt.Errorf("kcp: option mtu = %d carries datagrams of at most %d bytes; link frames need %d (mtu ≥ %d)",
			o.mtu, o.maxPayload(), transport.MaxDatagram, o.mtu+transport.MaxDatagram-o.maxPayload())
	}
	o.nodelay = nodelay == 1
	o.maxDelay = time.Duration(maxDelay) * time.Millisecond
	o.idleTimeout = time.Duration(idle) * time.Millisecond
	o.replaceAfter = o.idleTimeout / 4
	if replaceAfter >= 0 {
		o.replaceAfter = time.Duration(replaceAfter) * time.Millisecond
	}
	return o, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1500); return &b }}

type kcpTransport struct {
	opts  options
	done  chan struct{} // closed by Close
	rx    *rxqueue.Queue
	stats counters
	wg    sync.WaitGroup // the receive loop, the janitor and every peer goroutine

	mu     sync.Mutex // guards everything below
	closed bool
	conn   *net.UDPConn
	peers  map[netip.AddrPort]*peer
	cands  map[netip.AddrPort]*peer // a new session on trial beside peers[addr] (receive.go)
}

func (t *kcpTransport) Name() string { return Name }

var errNotListening = errors.New("kcp: Listen has not been called")

// Stats returns the transport's counters.
func (t *kcpTransport) Stats() Stats {
	c := &t.stats
	return Stats{Sessions: c.sessions.Load(), Replaced: c.replaced.Load(), Candidates: c.candidates.Load(), Expired: c.expired.Load(),
		SendDrops: c.sendDrops.Load(), InputDrops: c.inputDrops.Load(), Oversize: c.oversize.Load()}
}

func (t *kcpTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return netip.AddrPort{}, transport.ErrClosed
	case t.conn != nil:
		return netip.AddrPort{}, errors.New("kcp: Listen called twice")
	case !addr.IsValid():
		return netip.AddrPort{}, fmt.Errorf("kcp: invalid listen address %v", addr)
	}
	addr = unmap(addr)
	network := "udp6"
	switch {
	case addr.Addr().Is4():
		network = "udp4"
	case addr.Addr().IsUnspecified():
		network = "udp" // dual-stack wildcard, as in the udp transport
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("kcp: listen on %v: %w", addr, err)
	}
	_ = conn.SetReadBuffer(4 << 20) // best effort, capped by the kernel
	_ = conn.SetWriteBuffer(4 << 20)
	t.conn = conn
	t.wg.Add(2)
	go t.receive(conn)
	go t.janitor()
	return unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort()), nil
}

// Close ends every session, closes the socket, unblocks ReadBatch and
// waits for the transport's goroutines.
func (t *kcpTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conn := t.conn
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	for _, p := range t.cands {
		peers = append(peers, p)
	}
	t.peers, t.cands = nil, nil
	t.mu.Unlock()

	close(t.done)
	for _, p := range peers {
		p.close()
	}
	var err error
	if conn != nil {
		err = conn.Close()
	}
	t.wg.Wait()
	t.rx.Drain()
	return err
}

// janitor closes sessions that have heard nothing for idle_timeout_ms
// (KCP itself retransmits to a dead peer for ever), promotes candidates
// whose live session fell silent, and closes candidates that stay silent.
func (t *kcpTransport) janitor() {
	defer t.wg.Done()
	every := min(t.opts.idleTimeout/4, time.Second)
	if t.opts.replaceAfter > 0 {
		every = min(every, t.opts.replaceAfter/2, unackedReplace/2)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			var idle, replaced []*peer
			t.mu.Lock()
			for a, c := range t.cands {
				if old := t.promoteLocked(a, now); old != nil {
					replaced = append(replaced, old)
				} else if now.Sub(c.lastHeard()) > t.opts.idleTimeout {
					delete(t.cands, a)
					idle = append(idle, c)
				}
			}
			for a, p := range t.peers {
				if now.Sub(p.lastHeard()) > t.opts.idleTimeout {
					delete(t.peers, a)
					idle = append(idle, p)
				}
			}
			t.mu.Unlock()
			for _, p := range replaced {
				p.close()
			}
			for _, p := range idle {
				t.stats.expired.Add(1)
				p.close()
			}
		}
	}
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
