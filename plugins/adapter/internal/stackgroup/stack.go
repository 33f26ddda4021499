// Package stackgroup is what the socks and netstack adapters share: one
// userspace TCP/IP stack (gVisor, built by NewGVisor) per isolation
// group, tagged with the group's Flow, whose outgoing packets the
// adapter's ReadPackets takes straight from the stack's link endpoint.
// Packet pipeline, client → tunnel:
//
//  1. the application dials through its group's stack (Stack.DialTCP,
//     Stack.LookupHost: names are resolved through the tunnel);
//  2. the stack queues each IP packet on its channel endpoint, on the
//     goroutine that sent it, and wakes the Reader (a token on a
//     channel, never blocking);
//  3. Reader.Read (the core's goroutine, the adapter's ReadPackets)
//     copies the queued packets of every group, in turn, into the core's
//     buffers, tagged with each group's Flow. The link declares
//     segmentation offload: a TCP segment of up to 64 KiB is cut into
//     packets of the MTU, each checksummed, as it is copied (see gso).
//
// No goroutine stands between the stack and ReadPackets and no
// intermediate buffer is used (wireguard's netstack.CreateNetTUN, used
// before, handed each packet to a reader goroutine over an unbuffered
// channel: one rendezvous and one copy more per packet, and the sending
// goroutine blocked until the reader ran).
//
// Tunnel → client: the adapter's WritePackets looks the Flow up and
// injects the packets into that group's stack synchronously (Stack.Write:
// gVisor copies them), so the core's buffer is free again on return.
//
// What differs between the adapters (how groups are keyed, counted and
// closed for idleness) stays in each adapter.
package stackgroup

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// Queue is how many outgoing packets a group's stack holds for
// ReadPackets; beyond it they are dropped (and counted), as on a full
// interface queue. It is larger than a TCP window of cells (the exit's
// 1 MiB receive buffer is about 850 full cells), so one flow never fills
// it.
const Queue = 2048

// Stack is one isolation group's userspace stack.
type Stack struct {
	Flow uint64
	V4   netip.Addr // the stack's first IPv4 address, if any
	V6   netip.Addr // the stack's first IPv6 address, if any

	s   *stack.Stack
	ep  *channel.Endpoint
	r   *Reader
	dns *resolver

	mu     sync.RWMutex // held for writing while closing; Write reads
	closed bool

	// groMu orders concurrent Writes; runs of a download's segments are
	// joined into one packet before the stack sees them (join.go), so the
	// stack's TCP handles, ACKs and wakes the session's reader once per
	// run rather than once per segment.
	groMu       sync.Mutex
	badChecksum atomic.Uint64
}

// New creates the stack of the group numbered flow, with the given
// addresses, DNS servers (inside the tunnel) and MTU, and adds it to r,
// whose Read then returns its packets.
func New(r *Reader, flow uint64, addresses, dns []netip.Addr, mtu int) (*Stack, error) {
	st := &Stack{Flow: flow, r: r}
	s, ep, err := NewGVisor(mtu, Queue, DefaultTCP, r, true)
	if err != nil {
		return nil, err
	}
	st.s, st.ep = s, ep
	ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	for _, a := range addresses {
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if terr := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); terr != nil {
			st.close()
			return nil, &tcpipError{"add address " + a.String(), terr}
		}
		if a.Is4() && !st.V4.IsValid() {
			st.V4 = a
		}
		if a.Is6() && !st.V6.IsValid() {
			st.V6 = a
		}
	}
	if st.V4.IsValid() {
		s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	}
	if st.V6.IsValid() {
		s.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	st.dns = newResolver(st, dns)
	r.add(st)
	return st, nil
}

type tcpipError struct {
	what string
	err  tcpip.Error
}

func (e *tcpipError) Error() string { return e.what + ": " + e.err.String() }

// HasFamily reports whether the stack has an address of a's family, i.e.
// can reach a.
func (s *Stack) HasFamily(a netip.Addr) bool {
	return (a.Is4() && s.V4.IsValid()) || (a.Is6() && s.V6.IsValid())
}

// GVisor returns the stack itself (tests read its options back).
func (s *Stack) GVisor() *stack.Stack { return s.s }

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, proto
}

// DialTCP connects to ap through the stack.
func (s *Stack) DialTCP(ctx context.Context, ap netip.AddrPort) (*gonet.TCPConn, error) {
	fa, proto := fullAddr(ap)
	return gonet.DialContextTCP(ctx, s.s, fa, proto)
}

// DialUDP returns a UDP socket of the stack whose peer is ap.
func (s *Stack) DialUDP(ap netip.AddrPort) (*gonet.UDPConn, error) {
	fa, proto := fullAddr(ap)
	return gonet.DialUDP(s.s, nil, &fa, proto)
}

// ListenUDP returns a UDP socket of the stack bound to ap (port 0: any).
func (s *Stack) ListenUDP(ap netip.AddrPort) (*gonet.UDPConn, error) {
	fa, proto := fullAddr(ap)
	if !ap.Addr().IsValid() {
		fa.Addr = tcpip.Address{}
	}
	return gonet.DialUDP(s.s, &fa, nil, proto)
}

// Write injects IP packets (IPv4 or IPv6 only) into the stack in one
// call, in order. A run of consecutive full TCP segments of one
// connection (the bulk of a download) goes up as one packet of up to
// 64 KiB (join.go), each segment's checksums checked first; everything
// else goes up alone after its checksums are checked (the link endpoint
// declares them validated). Bad ones are dropped and counted in
// BadChecksum. It reports false if the stack is closed.
func (s *Stack) Write(pkts [][]byte) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.groMu.Lock()
	defer s.groMu.Unlock()
	for i := 0; i < len(pkts); {
		p := pkts[i]
		if len(p) == 0 || p[0]>>4 != 4 && p[0]>>4 != 6 {
			i++
			continue
		}
		proto := header.IPv4ProtocolNumber
		if p[0]>>4 == 6 {
			proto = header.IPv6ProtocolNumber
		}
		first, ok := parseSeg(p)
		switch {
		case ok && !first.valid(p), !ok && ippkt.Verify(p) != nil:
			s.badChecksum.Add(1)
			i++
			continue
		case !ok:
			s.injectOne(proto, p)
			i++
			continue
		}
		j, total, last := i+1, first.payload, first
		for j < len(pkts) && last.flags&uint8(header.TCPFlagPsh) == 0 && last.payload == first.payload {
			q := pkts[j]
			b, ok := parseSeg(q)
			if !ok || !first.follows(p, b, q, total) || !b.valid(q) {
				break
			}
			total += b.payload
			last = b
			j++
		}
		if j == i+1 {
			s.injectOne(proto, p)
		} else {
			pkb := joinRun(pkts[i:j], first, last, total)
			s.ep.InjectInbound(proto, pkb)
			pkb.DecRef()
		}
		i = j
	}
	return true
}

// injectOne hands one checked packet to the stack, which copies it.
func (s *Stack) injectOne(proto tcpip.NetworkProtocolNumber, p []byte) {
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	s.ep.InjectInbound(proto, pkb)
	pkb.DecRef()
}

// BadChecksum is how many packets Write dropped for a bad checksum or
// unreadable headers.
func (s *Stack) BadChecksum() uint64 { return s.badChecksum.Load() }

// Dropped is how many outgoing packets the stack dropped because its
// queue for ReadPackets was full.
func (s *Stack) Dropped() uint64 {
	return s.s.Stats().NICs.TxPacketsDroppedNoBufferSpace.Value()
}

// Close tears the stack down (aborting its connections) and removes it
// from its Reader; packets it still queued are dropped. Idempotent.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.r.remove(s)
	s.close()
}

func (s *Stack) close() {
	s.s.Close()
	s.s.Wait()
	s.ep.Close()
}

// WriteNotify is called by the link endpoint on the stack's goroutine
// after it queued a packet; see Reader.
var _ channel.Notification = (*Reader)(nil)
