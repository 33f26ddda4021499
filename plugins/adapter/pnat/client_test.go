package pnat

import (
	"context"
	"net"
	"net/netip"
	"os"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// testClient is a client-side gVisor stack like wireguard's
// tun/netstack, except that it accepts packets from loopback sources:
// the test servers listen on 127.0.0.1 and ::1, and a stock stack drops
// their replies as martians. (A kernel TUN would never route loopback
// into a tunnel in the first place.)
type testClient struct {
	s      *stack.Stack
	ep     *channel.Endpoint
	ctx    context.Context
	cancel context.CancelFunc
}

func newTestClient(addrs []netip.Addr) (*testClient, error) {
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: true}),
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: true}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	c := &testClient{s: s, ep: channel.New(1024, 1280, "")}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := s.CreateNIC(1, c.ep); err != nil {
		c.Close()
		return nil, os.ErrInvalid
	}
	for _, a := range addrs {
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}, stack.AddressProperties{})
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}, {Destination: header.IPv6EmptySubnet, NIC: 1}})
	return c, nil
}

func (c *testClient) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkb := c.ep.ReadContext(c.ctx)
	if pkb == nil {
		return 0, os.ErrClosed
	}
	defer pkb.DecRef()
	n := 0
	for _, s := range pkb.AsSlices() {
		n += copy(bufs[0][offset+n:], s)
	}
	sizes[0] = n
	return 1, nil
}

func (c *testClient) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		p := b[offset:]
		pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		proto := header.IPv4ProtocolNumber
		if p[0]>>4 == 6 {
			proto = header.IPv6ProtocolNumber
		}
		c.ep.InjectInbound(proto, pkb)
		pkb.DecRef()
	}
	return len(bufs), nil
}

func (c *testClient) Close() error {
	c.cancel()
	c.s.Close()
	c.s.Wait()
	c.ep.Close()
	return nil
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, proto
}

// DialContext dials TCP ("tcp", "host:port" with a literal address).
func (c *testClient) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fa, proto := fullAddr(ap)
	return gonet.DialContextTCP(ctx, c.s, fa, proto)
}

func (c *testClient) DialUDPAddrPort(_ netip.AddrPort, dst netip.AddrPort) (*gonet.UDPConn, error) {
	fa, proto := fullAddr(dst)
	return gonet.DialUDP(c.s, nil, &fa, proto)
}
