package transportplugin

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// udpTransport is a small loopback UDP transport for these tests and
// benchmarks (the real one lives in plugins/transport/udp). It uses
// recvmmsg/sendmmsg so both the in-process and out-of-process benchmarks
// measure a batch-capable transport.
type udpTransport struct {
	mu   sync.Mutex
	conn *net.UDPConn
	pc   *ipv4.PacketConn

	rmsgs []ipv4.Message // ReadBatch has one caller
}

func newUDP(map[string]string) (transport.Transport, error) { return &udpTransport{}, nil }

func (u *udpTransport) Name() string { return "testudp" }

func (u *udpTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		return netip.AddrPort{}, errors.New("testudp: already listening")
	}
	network := "udp4"
	if addr.Addr().Is6() { // the conformance suite's IPv6 and [::] checks
		network = "udp"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.AddrPort{}, err
	}
	c.SetReadBuffer(4 << 20)
	c.SetWriteBuffer(4 << 20)
	u.conn, u.pc = c, ipv4.NewPacketConn(c)
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (u *udpTransport) get() (*ipv4.PacketConn, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pc == nil {
		return nil, transport.ErrClosed
	}
	return u.pc, nil
}

func (u *udpTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	pc, err := u.get()
	if err != nil {
		return 0, err
	}
	if len(u.rmsgs) < len(pkts) {
		u.rmsgs = make([]ipv4.Message, len(pkts))
		for i := range u.rmsgs {
			u.rmsgs[i].Buffers = make([][]byte, 1)
		}
	}
	for {
		ms := u.rmsgs[:len(pkts)]
		for i := range ms {
			ms[i].Buffers[0] = pkts[i].Buf
		}
		n, err := pc.ReadBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, transport.ErrClosed
			}
			return 0, err
		}
		// Compact, dropping truncated datagrams (larger than their Buf).
		k := 0
		for i := range n {
			if ms[i].Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			ap := ms[i].Addr.(*net.UDPAddr).AddrPort()
			if k != i {
				copy(pkts[k].Buf, pkts[i].Buf[:ms[i].N])
			}
			pkts[k].N, pkts[k].Addr = ms[i].N, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}

func (u *udpTransport) WriteBatch(pkts []transport.Packet) error {
	pc, err := u.get()
	if err != nil {
		return err
	}
	ms := make([]ipv4.Message, len(pkts))
	for i, p := range pkts {
		ms[i] = ipv4.Message{Buffers: [][]byte{p.Buf[:p.N]}, Addr: net.UDPAddrFromAddrPort(p.Addr)}
	}
	for len(ms) > 0 {
		n, err := pc.WriteBatch(ms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return transport.ErrClosed
			}
			return err
		}
		ms = ms[n:]
	}
	return nil
}

func (u *udpTransport) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		u.pc = nil
		return nil
	}
	err := u.conn.Close()
	u.pc = nil
	return err
}
