// Package socks is Tarzan's SOCKS5 client adapter: applications connect to
// a local SOCKS5 port (RFC 1928, with RFC 1929 username/password), and the
// adapter turns their streams into IP packets with a userspace TCP/IP stack
// (gVisor, built by package stackgroup with our TCP options), so it needs
// no root and no TUN device.
//
// Hostnames are never resolved on this machine: they are looked up by a DNS
// query to the "dns" address inside the stack, which travels through the
// tunnel and is answered at the exit, like any other packet. The answer
// is kept in the isolation group's own cache for its TTL (at most 60 s),
// so a second CONNECT to the name in the same group does not wait for a
// lookup; no other group ever sees it (stackgroup's dns.go says why that
// is safe).
//
// Isolation. Every isolation group has its own stack and its own Flow
// number (adapter.Packet.Flow), so the core never mixes two groups in one
// tunnel. By default a group is one SOCKS username/password pair (like
// Tor's IsolateSOCKSAuth; the credentials are accepted without checking);
// clients that offer no authentication share the group with Flow 0. With
// isolate = "auth,dest" each destination host also gets its own group.
// A group without sessions is closed after idle_timeout; a later session
// with the same credentials gets a new group and a new Flow.
//
// Options (the [adapter.options] table in node.toml):
//
//	listen           SOCKS5 address (default 127.0.0.1:1080); loopback only
//	                 unless allow_remote = "true"
//	allow_remote     accept a non-loopback listen address (default false)
//	address          the stacks' inner addresses, comma-separated (default
//	                 100.64.0.2,fd7a:7a72:7a6e::2, adapter.ClientPrefix4/6;
//	                 Config.Addresses if unset)
//	dns              resolver(s) inside the tunnel (default the first of
//	                 Config.DNS, the node's; else adapter.DNSv4, 100.64.0.53)
//	isolate          "auth" (default) or "auth,dest"
//	mtu              inner MTU (default Config.MTU, else adapter.InnerMTU)
//	idle_timeout     close a group after this long without sessions (10m)
//	connect_timeout  give up a CONNECT after this long (30s)
//	optimistic       "true": answer CONNECT with success before the
//	                 connection through the tunnel is up (default false;
//	                 see below)
//
// Commands: CONNECT (IPv4, IPv6 and DOMAIN targets) and UDP ASSOCIATE;
// BIND is answered "command not supported". A failed CONNECT is answered
// as soon as the stack knows why:
//
//	0x05 connection refused   RST, or ICMP port unreachable, from the far side
//	0x04 host unreachable     ICMP host unreachable or administratively
//	                          prohibited (gVisor maps both to EHOSTUNREACH),
//	                          a name that does not resolve, connect_timeout
//	0x03 network unreachable  ICMP net unreachable; no inner address of the
//	                          destination's family
//	0x02 not allowed          destinations refused locally: loopback,
//	                          unspecified, multicast, link-local (also when a
//	                          name resolves to one)
//	0x01 general failure      anything else
//
// With optimistic = "true" the success reply (BND 0.0.0.0:0) leaves as
// soon as the destination is resolved and allowed, so the client's first
// bytes cross the tunnel right behind the TCP handshake instead of one
// local round trip later. Refused, unreachable and timed-out connects
// then reset the client's connection instead of getting the codes above
// (counted as connect_failed_after_reply); destinations refused locally
// and names that do not resolve keep their codes.
package socks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/stackgroup"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Name is the adapter's registered name.
const Name = "socks"

var _ adapter.Factory = New

// Proxy is the SOCKS5 adapter.
type Proxy struct {
	opts options
	log  *slog.Logger

	reader *stackgroup.Reader // ReadPackets: every group's stack's packets

	ctx    context.Context // canceled by Close: aborts dials
	cancel context.CancelFunc
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup // accept loop, reaper, sessions

	mu       sync.Mutex
	opened   bool
	ln       net.Listener
	groups   map[string]*group // by isolation key
	flows    map[uint64]*group
	nextFlow uint64
	closers  map[io.Closer]struct{} // live client and stack connections

	failedAfterReply atomic.Uint64 // optimistic CONNECTs whose connect failed after the success reply
}

// New returns an unopened SOCKS5 adapter; it is an adapter.Factory.
// Unknown option keys are rejected.
func New(options map[string]string) (adapter.Adapter, error) {
	o, err := parseOptions(options)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	return &Proxy{
		opts: o, log: slog.Default().With("adapter", Name),
		reader: stackgroup.NewReader(closed), ctx: ctx, cancel: cancel,
		closed: closed, groups: map[string]*group{},
		flows: map[uint64]*group{}, nextFlow: 1, closers: map[io.Closer]struct{}{},
	}, nil
}

// Name returns "socks".
func (p *Proxy) Name() string { return Name }

// Role returns adapter.RoleClient.
func (p *Proxy) Role() adapter.Role { return adapter.RoleClient }

// Open starts listening for SOCKS5 clients.
func (p *Proxy) Open(cfg adapter.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		return adapter.ErrClosed
	default:
	}
	if p.opened {
		return errors.New("socks: already open")
	}
	if !p.opts.mtuSet && cfg.MTU > 0 {
		if cfg.MTU < adapter.InnerMTU {
			return fmt.Errorf("socks: Config.MTU %d is below %d", cfg.MTU, adapter.InnerMTU)
		}
		p.opts.mtu = cfg.MTU
	}
	if !p.opts.dnsSet && len(cfg.DNS) > 0 {
		// The node's first resolver address, as the default was the
		// first of adapter.DefaultDNS: a stack asks the next only when
		// one fails, and IPv4 comes first.
		p.opts.dns = []netip.Addr{cfg.DNS[0].Unmap()}
	}
	if !p.opts.addressSet && len(cfg.Addresses) > 0 {
		p.opts.addresses = p.opts.addresses[:0]
		for _, pf := range cfg.Addresses {
			p.opts.addresses = append(p.opts.addresses, pf.Addr())
		}
	}
	ln, err := net.Listen("tcp", p.opts.listen.String())
	if err != nil {
		return fmt.Errorf("socks: listen on %s: %w", p.opts.listen, err)
	}
	p.ln = ln
	p.opened = true
	p.wg.Add(2)
	go p.acceptLoop(ln)
	go p.reapLoop()
	return nil
}

// Addr returns the SOCKS5 listening address (useful with port 0), or the
// zero value before Open.
func (p *Proxy) Addr() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return netip.AddrPort{}
	}
	return p.ln.Addr().(*net.TCPAddr).AddrPort()
}

// ReadPackets blocks for the first packet any group's stack emits, then
// takes whatever else is already queued. A packet larger than the
// caller's buffer is dropped.
func (p *Proxy) ReadPackets(pkts []adapter.Packet) (int, error) {
	return p.reader.Read(pkts)
}

// WritePackets delivers each packet to the stack of its Flow, a run of
// packets of one Flow in one write (the stack takes batches). Packets for
// groups that no longer exist, and anything that is not IPv4 or IPv6, are
// dropped but counted as accepted: like a network, the adapter loses
// packets rather than failing the batch.
func (p *Proxy) WritePackets(pkts []adapter.Packet) (int, error) {
	select {
	case <-p.closed:
		return 0, adapter.ErrClosed
	default:
	}
	var arr [adapter.BatchSize][]byte // on the stack: no allocation per batch
	run := arr[:0]
	var flow uint64
	for _, pk := range pkts {
		if pk.N <= 0 || pk.N > len(pk.Buf) {
			continue
		}
		b := pk.Buf[:pk.N]
		if v := b[0] >> 4; v != 4 && v != 6 {
			continue
		}
		if len(run) > 0 && pk.Flow != flow {
			p.writeRun(flow, run)
			run = run[:0]
		}
		flow, run = pk.Flow, append(run, b)
	}
	p.writeRun(flow, run)
	return len(pkts), nil
}

func (p *Proxy) writeRun(flow uint64, run [][]byte) {
	if len(run) == 0 {
		return
	}
	p.mu.Lock()
	g := p.flows[flow]
	p.mu.Unlock()
	if g != nil {
		g.Write(run)
	}
}

// Close stops the listener, ends every session and stack, and waits for
// all goroutines. It is idempotent.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.cancel()
		p.mu.Lock()
		if p.ln != nil {
			p.ln.Close()
		}
		for c := range p.closers {
			c.Close()
		}
		groups := p.groups
		p.groups, p.flows = map[string]*group{}, map[uint64]*group{}
		p.mu.Unlock()
		// Closing the stacks also wakes sessions stuck in a DNS query,
		// which netstack does not abort on context cancellation.
		for _, g := range groups {
			g.Close()
		}
		p.wg.Wait()
	})
	return nil
}

// track registers c to be closed by Close; it returns false (and closes
// c) if Close already ran.
func (p *Proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		c.Close()
		return false
	default:
	}
	p.closers[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.closers, c)
	p.mu.Unlock()
}

// acquire returns the group for key, creating it if needed, and holds a
// reference until release.
func (p *Proxy) acquire(key string) (*group, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		return nil, adapter.ErrClosed
	default:
	}
	g := p.groups[key]
	if g == nil {
		flow := uint64(0)
		if key != "" {
			flow = p.nextFlow
			p.nextFlow++
		}
		var err error
		if g, err = newGroup(p.reader, key, flow, p.opts); err != nil {
			return nil, err
		}
		p.groups[key], p.flows[flow] = g, g
		p.log.Debug("isolation group opened", "flow", flow)
	}
	g.refs++
	g.lastUsed = time.Now()
	return g, nil
}

func (p *Proxy) release(g *group) {
	p.mu.Lock()
	g.refs--
	g.lastUsed = time.Now()
	p.mu.Unlock()
}

// reapLoop closes groups that have had no session for idle_timeout.
func (p *Proxy) reapLoop() {
	defer p.wg.Done()
	t := time.NewTicker(max(p.opts.idleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case now := <-t.C:
			for _, g := range p.takeIdle(now) {
				p.log.Debug("isolation group closed (idle)", "flow", g.Flow)
				g.Close()
			}
		}
	}
}

func (p *Proxy) takeIdle(now time.Time) []*group {
	p.mu.Lock()
	defer p.mu.Unlock()
	var idle []*group
	for k, g := range p.groups {
		if g.refs == 0 && now.Sub(g.lastUsed) >= p.opts.idleTimeout {
			idle = append(idle, g)
			delete(p.groups, k)
			delete(p.flows, g.Flow)
		}
	}
	return idle
}

// groupCount returns the number of open isolation groups (for tests).
func (p *Proxy) groupCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.groups)
}

// Stats returns the adapter's counters, summed over the open isolation
// groups: dns_queries (lookups sent through the tunnel), dns_cache_hits
// (lookups the group's cache answered), stack_tx_dropped (packets a
// group's stack dropped because ReadPackets fell a whole queue behind)
// groups and, with the optimistic option, connect_failed_after_reply
// (CONNECTs answered with success whose connection then failed; their
// clients were reset).
func (p *Proxy) Stats() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]uint64{"groups": uint64(len(p.groups))}
	if p.opts.optimistic {
		m["connect_failed_after_reply"] = p.failedAfterReply.Load()
	}
	for _, g := range p.groups {
		q, h := g.DNSStats()
		m["dns_queries"] += q
		m["dns_cache_hits"] += h
		m["stack_tx_dropped"] += g.Dropped()
		m["drop_checksum"] += g.BadChecksum()
	}
	return m
}
