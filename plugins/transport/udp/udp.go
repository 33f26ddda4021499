// Package udp is Tarzan's default transport: every link frame is one plain
// UDP datagram. Datagrams move in batches with recvmmsg/sendmmsg on Linux
// (golang.org/x/net/ipv4 and ipv6 ReadBatch/WriteBatch); elsewhere x/net
// falls back to one datagram per system call. On Linux, runs of frames to
// one peer also go out as one message with UDP segmentation offload
// (UDP_SEGMENT) and arrive coalesced (UDP_GRO); batch.go has the details.
//
// Options (the [transport.options] table in node.toml):
//
//	sndbuf  socket send buffer in bytes (default 4 MiB)
//	rcvbuf  socket receive buffer in bytes (default 4 MiB)
//	batch   messages per system call, 1..transport.BatchSize (default 64)
//	gso     on|off: send runs of frames as one UDP_SEGMENT message (default on)
//	gro     on|off: receive coalesced messages with UDP_GRO (default on)
//
// Buffer sizes are best effort: as root the kernel limits are bypassed
// (SO_SNDBUFFORCE/SO_RCVBUFFORCE), otherwise they are capped by
// net.core.wmem_max and net.core.rmem_max. gso and gro are used only where
// the kernel offers them (Linux ≥ 4.18 and 5.0); a kernel or device without
// them costs nothing but the gain.
package udp

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

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Name is the transport's registered name.
const Name = "udp"

const (
	defaultBuffer = 4 << 20
	maxBuffer     = 1 << 30
)

var _ transport.Factory = New

// options are the parsed plugin options.
type options struct {
	sndbuf, rcvbuf int
	batch          int
	gso, gro       bool
}

// New returns an unbound UDP transport configured by options; it is a
// transport.Factory. Unknown option keys are rejected.
func New(opts map[string]string) (transport.Transport, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	t := &udpTransport{opts: o}
	t.batches.New = func() any { return newBatch(o.batch) }
	return t, nil
}

func parseOptions(m map[string]string) (options, error) {
	o := options{sndbuf: defaultBuffer, rcvbuf: defaultBuffer, batch: transport.BatchSize, gso: true, gro: true}
	flags := map[string]*bool{"gso": &o.gso, "gro": &o.gro}
	known := map[string]struct {
		dst      *int
		min, max int
	}{
		"sndbuf": {&o.sndbuf, 1, maxBuffer},
		"rcvbuf": {&o.rcvbuf, 1, maxBuffer},
		"batch":  {&o.batch, 1, transport.BatchSize},
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad key first every time
	for _, k := range keys {
		if f, ok := flags[k]; ok {
			switch strings.ToLower(strings.TrimSpace(m[k])) {
			case "on", "true", "1":
				*f = true
			case "off", "false", "0":
				*f = false
			default:
				return options{}, fmt.Errorf("udp: option %s = %q: want on or off", k, m[k])
			}
			continue
		}
		opt, ok := known[k]
		if !ok {
			return options{}, fmt.Errorf("udp: unknown option %q (known: batch, gro, gso, rcvbuf, sndbuf)", k)
		}
		v, err := strconv.Atoi(strings.TrimSpace(m[k]))
		if err != nil || v < opt.min || v > opt.max {
			return options{}, fmt.Errorf("udp: option %s = %q: want an integer in %d..%d", k, m[k], opt.min, opt.max)
		}
		*opt.dst = v
	}
	return o, nil
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common:
// ipv4.Message and ipv6.Message are both x/net's socket.Message.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// socket is the bound state, published once by Listen.
type socket struct {
	conn  *net.UDPConn
	batch batchConn
	gro   bool     // UDP_GRO is on: ReadBatch splits coalesced messages
	rx    *rxState // with gro: the receive buffers
}

type udpTransport struct {
	opts    options
	batches sync.Pool // *batch, so that no call allocates message slices

	mu     sync.Mutex // serialises Listen and Close
	closed bool       // guarded by mu
	sock   atomic.Pointer[socket]

	gso atomic.Bool // send with UDP_SEGMENT; cleared for good by EIO

	// Counters for Stats.
	txMessages, txRefused, gsoRetries, gsoDisabled atomic.Uint64
	rxMessages, rxTooBig                           atomic.Uint64
}

func (t *udpTransport) Name() string { return Name }

var errNotListening = errors.New("udp: Listen has not been called")

func (t *udpTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return netip.AddrPort{}, transport.ErrClosed
	case t.sock.Load() != nil:
		return netip.AddrPort{}, errors.New("udp: Listen called twice")
	case !addr.IsValid():
		return netip.AddrPort{}, fmt.Errorf("udp: invalid listen address %v", addr)
	}
	// An IPv4-mapped IPv6 address means IPv4: bind an AF_INET socket.
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	network := "udp6"
	switch {
	case addr.Addr().Is4():
		network = "udp4"
	case addr.Addr().IsUnspecified():
		// "[::]" means every address, IPv4 included: Go makes a "udp"
		// wildcard socket dual-stack, while "udp6" would set IPV6_V6ONLY.
		network = "udp"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("udp: listen on %v: %w", addr, err)
	}
	setBuffers(conn, t.opts.sndbuf, t.opts.rcvbuf)
	s := &socket{conn: conn}
	gso, gro := offload(conn, t.opts.gso, t.opts.gro)
	t.gso.Store(gso)
	if gro {
		s.gro, s.rx = true, newRxState(t.opts.batch)
	}
	if addr.Addr().Is4() {
		s.batch = ipv4.NewPacketConn(conn)
	} else {
		s.batch = ipv6.NewPacketConn(conn)
	}
	t.sock.Store(s)
	bound := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port()), nil
}

func (t *udpTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if s := t.sock.Load(); s != nil {
		return s.conn.Close()
	}
	return nil
}

// socket returns the bound socket, or the error a call made now must return.
func (t *udpTransport) socket() (*socket, error) {
	if s := t.sock.Load(); s != nil {
		return s, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrClosed
	}
	return nil, errNotListening
}

// ioError turns an error from the socket into the transport's vocabulary.
func (t *udpTransport) ioError(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return transport.ErrClosed
	}
	return err
}

// Stats reports the transport's counters (out of process they reach the
// node's plugin stats). udp_gso and udp_gro are 1 while in use.
func (t *udpTransport) Stats() map[string]uint64 {
	b := func(v bool) uint64 {
		if v {
			return 1
		}
		return 0
	}
	s := t.sock.Load()
	return map[string]uint64{
		"udp_gso":              b(t.gso.Load()),
		"udp_gro":              b(s != nil && s.gro),
		"udp_gso_messages":     t.txMessages.Load(),
		"udp_gso_retries":      t.gsoRetries.Load(),
		"udp_gso_disabled":     t.gsoDisabled.Load(),
		"udp_tx_refused":       t.txRefused.Load(),
		"udp_gro_messages":     t.rxMessages.Load(),
		"udp_rx_dropped_large": t.rxTooBig.Load(),
	}
}
