package pnat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/gso"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Name is the adapter's registry name.
const Name = "pnat"

// Resolver is the part of *net.Resolver the DNS service uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Exit is the pseudonymous NAT. Create it with New; it is an
// adapter.Adapter and an adapter.FlowCloser.
type Exit struct {
	cfg      config
	reload   reloaded // the exit policy of the last reload (reload.go)
	log      *slog.Logger
	resolver Resolver
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// listenPing opens an unprivileged ICMP socket; replaced in tests.
	listenPing func(network string) (net.PacketConn, error)
	// routeLocal and hostAddrs are the local-destination guard's views
	// of the host (local.go); replaced in tests.
	routeLocal func(netip.Addr) (bool, error)
	hostAddrs  func() map[netip.Addr]bool

	st  *netStack
	out chan outPacket // replies built here (refusals, echo replies)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu         sync.Mutex // guards everything below
	opened     bool
	closed     bool
	tunnels    map[uint64]*tunnel
	byInternal map[netip.Addr]*mapping
	flowsByKey map[flowKey]*flow // UDP, ICMP and DNS flows by 5-tuple
	pool4      *addrPool
	pool6      *addrPool
	localAddrs map[netip.Addr]bool // the exit host's own addresses, as last seen (local.go)
	janitorOn  bool                // a janitor goroutine runs (mapping.go)

	stats stats
}

var (
	_ adapter.Adapter    = (*Exit)(nil)
	_ adapter.FlowCloser = (*Exit)(nil)
)

// New returns an exit NAT configured from options (keys Opt*); it does
// nothing until Open.
func New(options map[string]string) (adapter.Adapter, error) {
	cfg, err := parseOptions(options)
	if err != nil {
		return nil, err
	}
	return &Exit{
		cfg:        cfg,
		log:        slog.Default().With("adapter", Name),
		resolver:   net.DefaultResolver,
		dial:       newDialer(cfg.bind, cfg.alias),
		listenPing: listenPing,
		routeLocal: routeIsLocal,
		hostAddrs:  hostAddrs,
		done:       make(chan struct{}),
		tunnels:    make(map[uint64]*tunnel),
		byInternal: make(map[netip.Addr]*mapping),
		flowsByKey: make(map[flowKey]*flow),
		pool4:      newPool4(cfg.dnsAddrs),
		pool6:      newPool6(cfg.dnsAddrs),
	}, nil
}

// SetResolver replaces the resolver DNS queries go to. Call before Open.
func (e *Exit) SetResolver(r Resolver) { e.resolver = r }

func (e *Exit) Name() string       { return Name }
func (e *Exit) Role() adapter.Role { return adapter.RoleExit }

// Open builds the userspace stack and starts the janitor.
func (e *Exit) Open(cfg adapter.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return adapter.ErrClosed
	}
	if e.opened {
		return errors.New("pnat: already open")
	}
	if len(cfg.Options) > 0 {
		c, err := parseOptions(cfg.Options)
		if err != nil {
			return err
		}
		e.cfg = c
	}
	for _, opt := range e.cfg.fromCore(cfg) {
		e.log.Warn("pnat: option "+opt+" is deprecated and will be removed in the next version; "+
			"set exit.policy and tunnels.dns in node.toml instead (this option still overrides them at the exit adapter)",
			"option", opt)
	}
	// The pools never hand out a resolver address as a mapping.
	e.pool4, e.pool6 = newPool4(e.cfg.dnsAddrs), newPool6(e.cfg.dnsAddrs)
	mtu := cfg.MTU
	if mtu <= 0 {
		mtu = adapter.InnerMTU
	}
	st, err := newNetStack(e, mtu)
	if err != nil {
		return fmt.Errorf("pnat: open: %w", err)
	}
	e.st = st
	e.out = make(chan outPacket, 1024)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.localAddrs = e.hostAddrs()
	e.opened = true
	e.wg.Add(1)
	go e.janitor()
	return nil
}

// Close stops every flow and goroutine and releases the stack.
func (e *Exit) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	var flows []*flow
	for _, t := range e.tunnels {
		flows = append(flows, t.allFlows()...)
	}
	opened := e.opened
	e.mu.Unlock()
	if !opened {
		return nil
	}
	e.cancel()
	for _, f := range flows {
		f.abort()
	}
	// Closing the stack aborts its endpoints, including handshakes the
	// TCP forwarder is blocked in, so every goroutine can finish.
	e.st.s.Close()
	e.wg.Wait()
	e.st.close()
	return nil
}

// track registers a goroutine with the WaitGroup unless Close has begun.
func (e *Exit) track() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// CloseFlow forgets everything of one tunnel: its flows are aborted and
// its internal addresses freed.
func (e *Exit) CloseFlow(id uint64) error {
	e.mu.Lock()
	t := e.tunnels[id]
	var flows []*flow
	if t != nil {
		flows = t.allFlows()
		for _, m := range t.maps {
			e.freeMappingLocked(m)
		}
		delete(e.tunnels, id)
	}
	e.mu.Unlock()
	for _, f := range flows {
		f.abort()
	}
	return nil
}

// outPacket is a reply waiting for ReadPackets.
type outPacket struct {
	buf  *[]byte
	flow uint64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:0]; bufPool.Put(b) }

// enqueue hands a locally built reply to ReadPackets without blocking;
// when the queue is full the reply is dropped, as a router would.
func (e *Exit) enqueue(b *[]byte, flow uint64) {
	select {
	case e.out <- outPacket{b, flow}:
		e.stats.packetsOut.Add(1)
	default:
		e.stats.dropQueueFull.Add(1)
		putBuf(b)
	}
}

// ReadPackets returns replies for tunnels, each with its tunnel's Flow:
// the replies built here, then what the stack sent, read from its link
// endpoint into pkts directly. It blocks until there is at least one.
func (e *Exit) ReadPackets(pkts []adapter.Packet) (int, error) {
	if !e.isOpen() {
		return 0, errors.New("pnat: not open")
	}
	if len(pkts) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-e.done: // closed: ErrClosed, whatever is left
			return 0, adapter.ErrClosed
		default:
		}
		if n := e.more(pkts, 0); n > 0 {
			return n, nil
		}
		select {
		case <-e.done:
			return 0, adapter.ErrClosed
		case p := <-e.out:
			if n := e.more(pkts, e.fill(pkts, 0, p)); n > 0 {
				return n, nil
			}
		case <-e.st.ready:
		}
	}
}

// more adds what is queued without waiting to pkts[:n].
func (e *Exit) more(pkts []adapter.Packet, n int) int {
	st := e.st
	st.readMu.Lock()
	defer st.readMu.Unlock()
	for n < len(pkts) {
		if !st.seg.Done() {
			n = e.fillSegments(pkts, n)
			continue
		}
		select {
		case p := <-e.out:
			n = e.fill(pkts, n, p)
			continue
		default:
		}
		pkb := st.ep.Read()
		if pkb == nil {
			return n
		}
		if gso.Needs(pkb) {
			e.loadSegments(pkb)
			continue
		}
		n = e.fillStack(pkts, n, pkb)
	}
	return n
}

// loadSegments takes a TCP packet the stack left to us to cut and
// checksum (up to 64 KiB: gso.Segmenter) and rewrites its destination,
// once for all its packets, to the tunnel's inner address; fillSegments
// then cuts it into pkts. The caller holds readMu.
func (e *Exit) loadSegments(pkb *stack.PacketBuffer) {
	st := e.st
	if !st.seg.Load(pkb) {
		e.stats.dropMalformed.Add(1)
		return
	}
	h := st.seg.Header()
	field := h[16:20]
	if h[0]>>4 == 6 {
		field = h[24:40]
	}
	a, _ := netip.AddrFromSlice(field)
	m := e.lookupInternal(a)
	if m == nil {
		e.stats.dropNoMapping.Add(1)
		st.seg.Release()
		return
	}
	if inner := m.inner.AsSlice(); len(inner) == len(field) {
		copy(field, inner)
	} else {
		e.stats.dropMalformed.Add(1)
		st.seg.Release()
		return
	}
	m.touch()
	st.segFlow = m.t.id
}

// fillSegments puts the loaded segment's next packets into pkts[n:] and
// returns the new count. The caller holds readMu.
func (e *Exit) fillSegments(pkts []adapter.Packet, n int) int {
	st := e.st
	for n < len(pkts) && !st.seg.Done() {
		k := st.seg.Next(pkts[n].Buf)
		if k == 0 {
			e.stats.dropTooBig.Add(1)
			continue
		}
		e.stats.packetsOut.Add(1)
		pkts[n].N, pkts[n].Flow = k, st.segFlow
		n++
	}
	return n
}

// fillStack puts one packet the stack sent into pkts[n], rewritten for
// its tunnel, and returns the new count; a packet without a tunnel is
// dropped (and counted).
func (e *Exit) fillStack(pkts []adapter.Packet, n int, pkb *stack.PacketBuffer) int {
	defer pkb.DecRef()
	k, ok := gso.Copy(pkts[n].Buf, pkb)
	if !ok {
		e.stats.dropTooBig.Add(1)
		return n
	}
	dst := pkts[n].Buf
	flow, ok := e.unmap(dst[:k])
	if !ok {
		return n
	}
	e.stats.packetsOut.Add(1)
	pkts[n].N, pkts[n].Flow = k, flow
	return n + 1
}

func (e *Exit) fill(pkts []adapter.Packet, n int, p outPacket) int {
	defer putBuf(p.buf)
	dst := pkts[n].Buf
	if len(dst) < len(*p.buf) {
		e.stats.dropTooBig.Add(1)
		return n
	}
	pkts[n].N = copy(dst, *p.buf)
	pkts[n].Flow = p.flow
	return n + 1
}

func (e *Exit) isOpen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opened
}

// Stats returns a snapshot of the counters (names in stats.go).
func (e *Exit) Stats() map[string]uint64 {
	m := e.stats.snapshot()
	e.mu.Lock()
	m["tunnels"] = uint64(len(e.tunnels))
	m["mappings"] = uint64(len(e.byInternal))
	var open int
	for _, t := range e.tunnels {
		open += t.nflows
	}
	m["flows_open"] = uint64(open)
	e.mu.Unlock()
	return m
}

// Policy returns the exit policy in force: after Open, the core's
// (adapter.Config.ExitPolicy) unless the deprecated option set one.
func (e *Exit) Policy() *exitpolicy.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.policy()
}

func now() int64 { return time.Now().UnixNano() }
