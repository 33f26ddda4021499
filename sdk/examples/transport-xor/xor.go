package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Name is the transport's name; node.toml names it with [transport] name.
const Name = "xor"

// maxUDP is the largest UDP payload; scratch buffers hold one.
const maxUDP = 65535

// socketBuffer is asked of the kernel for both directions, so a burst of
// a few batches is not dropped at the socket.
const socketBuffer = 4 << 20

var _ transport.Factory = New

// OptionSchema declares the options New reads: `tarzan validate` checks
// node.toml against it (main declares it), and New checks its options
// with it, so the two cannot disagree.
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "key", Type: pluginkit.TypeString, Required: true, Help: "the XOR key, any non-empty string, the same on every node"},
}}

// New returns an unbound xor transport; it is a transport.Factory.
func New(options map[string]string) (transport.Transport, error) {
	if err := OptionSchema.Check(options); err != nil {
		return nil, err
	}
	key := options["key"]
	if key == "" {
		return nil, errors.New(`xor: option "key" is required (any non-empty string, the same on every node)`)
	}
	t := &xorTransport{key: []byte(key)}
	t.scratch.New = func() any { b := make([]byte, maxUDP); return &b }
	return t, nil
}

type xorTransport struct {
	key     []byte
	scratch sync.Pool // *[]byte of maxUDP, for writes and reads

	mu     sync.Mutex // guards conn and closed
	conn   *net.UDPConn
	closed bool
}

func (t *xorTransport) Name() string { return Name }

func (t *xorTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return netip.AddrPort{}, transport.ErrClosed
	case t.conn != nil:
		return netip.AddrPort{}, errors.New("xor: Listen called twice")
	case !addr.IsValid():
		return netip.AddrPort{}, fmt.Errorf("xor: invalid listen address %v", addr)
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	network := "udp6"
	switch {
	case addr.Addr().Is4():
		network = "udp4"
	case addr.Addr().IsUnspecified():
		network = "udp" // [::] is dual-stack
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("xor: listen on %v: %w", addr, err)
	}
	conn.SetReadBuffer(socketBuffer) // best effort: capped by the kernel
	conn.SetWriteBuffer(socketBuffer)
	t.conn = conn
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// socket returns the bound socket, or why there is none.
func (t *xorTransport) socket() (*net.UDPConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return nil, transport.ErrClosed
	case t.conn == nil:
		return nil, errors.New("xor: Listen has not been called")
	}
	return t.conn, nil
}

// ReadBatch returns one datagram per call: simple, and enough to pass the
// conformance suite. (The shipped udp transport shows batched system
// calls with recvmmsg.) Each datagram is read into a scratch buffer and
// XORed into the caller's, so one that does not fit is dropped whole.
func (t *xorTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	conn, err := t.socket()
	if err != nil {
		return 0, err
	}
	if len(pkts) == 0 {
		return 0, nil
	}
	bp := t.scratch.Get().(*[]byte)
	defer t.scratch.Put(bp)
	buf := *bp
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, transport.ErrClosed
			}
			return 0, fmt.Errorf("xor: read: %w", err)
		}
		if n > len(pkts[0].Buf) {
			continue // too large for the caller's buffer: dropped
		}
		t.xor(pkts[0].Buf[:n], buf[:n])
		pkts[0].N = n
		pkts[0].Addr = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		return 1, nil
	}
}

// WriteBatch XORs each datagram into a scratch buffer (the caller's
// buffer is never modified) and sends it.
func (t *xorTransport) WriteBatch(pkts []transport.Packet) error {
	conn, err := t.socket()
	if err != nil {
		return err
	}
	bp := t.scratch.Get().(*[]byte)
	defer t.scratch.Put(bp)
	for _, p := range pkts {
		if p.N > maxUDP {
			return fmt.Errorf("xor: datagram of %d bytes exceeds %d", p.N, maxUDP)
		}
		out := (*bp)[:p.N]
		t.xor(out, p.Buf[:p.N])
		to := netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())
		if _, err := conn.WriteToUDPAddrPort(out, to); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return transport.ErrClosed
			}
			return fmt.Errorf("xor: write to %v: %w", to, err)
		}
	}
	return nil
}

// xor sets dst[i] = src[i] ^ key[i mod len(key)]. The same call undoes it.
func (t *xorTransport) xor(dst, src []byte) {
	k := t.key
	for i := range src {
		dst[i] = src[i] ^ k[i%len(k)]
	}
}

func (t *xorTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.conn != nil {
		return t.conn.Close()
	}
	return nil
}
