package pnat

import (
	"fmt"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/gso"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
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

	// gro coalesces the consecutive segments of a TCP flow that one
	// WritePackets batch brings into one segment of up to 64 KiB before
	// the stack sees them (gVisor's generic receive offload): the stack's
	// TCP then handles, queues and wakes its reader once per run instead
	// of once per segment. It validates the checksums of what it takes;
	// everything else inject validates itself, because the link endpoint
	// declares the checksums validated (a coalesced segment's checksums
	// are those of its first part).
	groMu sync.Mutex
	gro   gro.GRO

	// seg cuts the stack's large TCP segments into packets of the MTU in
	// ReadPackets (segmentation offload: the link endpoint declares host
	// GSO, so the stack's TCP sends up to 64 KiB per segment and leaves
	// its checksum to us; see plugins/adapter/internal/gso). segFlow is
	// the tunnel of the packet it holds. Both are guarded by readMu.
	readMu  sync.Mutex
	seg     gso.Segmenter
	segFlow uint64
}

// injector delivers the packets GRO lets go to the link endpoint. GRO
// marks what it validated; a segment it lets go unmarked had a bad
// checksum (or headers it could not read) and is dropped and counted.
type injector struct {
	ep  *channel.Endpoint
	bad *atomic.Uint64
}

func (d injector) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if !pkt.RXChecksumValidated {
		d.bad.Add(1)
		return
	}
	d.ep.InjectInbound(proto, pkt)
}

func (d injector) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

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
	ns.ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	ns.gro.Init(true)
	ns.gro.Dispatcher = injector{ns.ep, &e.stats.dropChecksum}
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
	if err := s.CreateNIC(nicID, gso.Endpoint{Endpoint: ns.ep}); err != nil {
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

// inject hands one rewritten packet to the stack, which copies it. A TCP
// segment waits in GRO for the rest of the batch (flush); anything else
// has its checksums verified here (the stack trusts the link to have
// done so) and goes up at once. The caller holds groMu. It reports
// whether the packet was taken (false: a bad checksum).
func (ns *netStack) inject(pkt []byte, in ippkt.Info) bool {
	proto := header.IPv4ProtocolNumber
	if in.Version == 6 {
		proto = header.IPv6ProtocolNumber
	}
	simple := in.Proto == ippkt.ProtoTCP && !in.Fragment &&
		(in.Version == 4 && in.PayloadOffset == header.IPv4MinimumSize ||
			in.Version == 6 && in.PayloadOffset == header.IPv6MinimumSize)
	if !simple && ippkt.Verify(pkt) != nil {
		return false
	}
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	pkb.NetworkProtocolNumber = proto
	if simple {
		ns.gro.Enqueue(pkb)
	} else {
		ns.ep.InjectInbound(proto, pkb)
	}
	pkb.DecRef()
	return true
}

// flush hands what GRO holds to the stack; the caller holds groMu.
func (ns *netStack) flush() { ns.gro.Flush() }

func (ns *netStack) close() {
	ns.s.Close()
	ns.s.Wait()
	ns.ep.Close()
	ns.readMu.Lock()
	ns.seg.Release()
	ns.readMu.Unlock()
}
