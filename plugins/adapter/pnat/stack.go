package pnat

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID = 1

// stackQueue is how many packets the stack's link endpoint holds for
// ReadPackets; beyond it the stack's packets are dropped, as on a full
// interface queue.
const stackQueue = 2048

// netStack is the one gVisor stack every tunnel's flows terminate in.
type netStack struct {
	s     *stack.Stack
	ep    *channel.Endpoint
	ready chan struct{} // a token when the endpoint queued a packet
}

// WriteNotify is called by the endpoint, on the stack's goroutine, after
// it queued a packet: it wakes ReadPackets without blocking the stack.
func (ns *netStack) WriteNotify() {
	select {
	case ns.ready <- struct{}{}:
	default:
	}
}

func newNetStack(e *Exit, mtu int) (*netStack, error) {
	// gVisor drops inbound packets for loopback destinations ("martians");
	// with allow_loopback the guard is lifted and so must that check be.
	loop := e.cfg.allowLoopback
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: loop}),
			ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: loop}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	ns := &netStack{s: s, ep: channel.New(stackQueue, uint32(mtu), ""), ready: make(chan struct{}, 1)}
	ns.ep.AddNotify(ns)
	fail := func(what string, err tcpip.Error) (*netStack, error) {
		ns.close()
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK", err)
	}
	// Loss detection by SACK and duplicate ACKs (RFC 6675), not RACK: after
	// a burst loss (a plugin restart, a relay lost mid-flow) gVisor's RACK
	// left the sender at two segments per 200 ms for 10-60 s
	// (scripts/e2e-faults.sh, plugin-tun).
	rec := tcpip.TCPRecovery(0)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rec); err != nil {
		return fail("loss detection", err)
	}
	if err := s.CreateNIC(nicID, ns.ep); err != nil {
		return fail("create NIC", err)
	}
	// Promiscuous: accept packets for any destination. Spoofing: answer
	// from that destination. Together the stack impersonates every host.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return fail("promiscuous mode", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return fail("spoofing", err)
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	tcpFwd := tcp.NewForwarder(s, 0, 1024, e.forwardTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(s, e.forwardUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	return ns, nil
}

// inject hands one rewritten packet to the stack. The stack copies it.
func (ns *netStack) inject(pkt []byte) {
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	proto := header.IPv4ProtocolNumber
	if pkt[0]>>4 == 6 {
		proto = header.IPv6ProtocolNumber
	}
	ns.ep.InjectInbound(proto, pkb)
	pkb.DecRef()
}

func (ns *netStack) close() {
	ns.s.Close()
	ns.s.Wait()
	ns.ep.Close()
}
