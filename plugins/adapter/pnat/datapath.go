package pnat

// Data path.
//
// Tunnel → Internet (WritePackets, on the caller's goroutine):
//  1. parse the packet (sdk/ippkt); drop what does not parse;
//  2. DNS to a resolver address is let through to the stack's DNS service;
//  3. otherwise the exit policy and the local-destination guard decide;
//     a refusal is answered at once (TCP RST, ICMP admin-prohibited);
//  4. ICMP echo is served by the echo path (icmp.go), other ICMP dropped;
//  5. TCP/UDP: find or make the (tunnel, inner source) mapping, apply the
//     flow limit to new UDP flows, clamp the SYN's MSS, copy the packet,
//     rewrite its source to the internal address, inject into the stack:
//     a TCP segment through GRO (stack.go), which joins the consecutive
//     segments of a flow in the batch and hands them to the stack at the
//     end of the batch, anything else after its checksums are verified.
//     The stack's forwarders (tcp.go, udp.go) dial out per new flow.
//
// Internet → tunnel (ReadPackets, on the caller's goroutine):
//  1. take the replies built here (refusals, echo replies) first;
//  2. then the stack's outbound packets, straight from its link endpoint's
//     queue into the caller's buffers (no goroutine and no copy between);
//  3. look each destination (an internal address) up; drop if unknown;
//  4. rewrite it to the inner address and tag it with its tunnel's Flow.
//     A TCP segment comes as the stack's TCP sent it: up to 64 KiB with
//     its checksum left to the link (segmentation offload, stack.go and
//     plugins/adapter/internal/gso). Its destination is rewritten once,
//     then it is cut into packets of the MTU, each checksummed, across as
//     many ReadPackets calls as it takes.
//     When nothing is queued, wait for the endpoint's write notification.
//     A full endpoint queue (stackQueue packets) drops, as a router's
//     would, and the stack's TCP retransmits.

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// WritePackets takes packets from tunnels. Every packet is consumed (n is
// len(pkts)); those refused are counted in Stats.
func (e *Exit) WritePackets(pkts []adapter.Packet) (int, error) {
	if !e.isOpen() {
		return 0, errors.New("pnat: not open")
	}
	select {
	case <-e.done:
		return 0, adapter.ErrClosed
	default:
	}
	scratch := getBuf()
	defer putBuf(scratch)
	e.st.groMu.Lock()
	defer e.st.groMu.Unlock()
	defer e.st.flush()
	for i := range pkts {
		p := &pkts[i]
		if p.N < 0 || p.N > len(p.Buf) {
			e.stats.dropMalformed.Add(1)
			continue
		}
		e.stats.packetsIn.Add(1)
		e.writeOne(p.Buf[:p.N], p.Flow, scratch)
	}
	return len(pkts), nil
}

func (e *Exit) writeOne(pkt []byte, tid uint64, scratch *[]byte) {
	in, err := ippkt.Parse(pkt)
	if err != nil {
		e.stats.dropMalformed.Add(1)
		return
	}
	pkt = pkt[:in.Length]
	proto := adapter.ProtoName(in.Proto)
	icmp := in.Proto == ippkt.ProtoICMP || in.Proto == ippkt.ProtoICMPv6
	if proto == "" || icmp && (in.Proto == ippkt.ProtoICMP) != (in.Version == 4) {
		e.stats.dropUnsupported.Add(1)
		return
	}
	dst := netip.AddrPortFrom(in.Dst, in.DstPort)
	if !(!icmp && e.isDNS(dst)) {
		if !in.HasTransport() {
			// Later fragments carry no ports to check; the first
			// fragment decides, so let them follow an existing mapping.
			if m := e.existingMapping(tid, in.Src); m != nil {
				e.injectMapped(pkt, in, m, scratch)
			}
			return
		}
		if err := e.allowed(proto, dst); err != nil {
			e.refuse(pkt, in, tid)
			return
		}
	}
	if icmp {
		if !ippkt.IsEchoRequest(in) || in.Fragment {
			e.stats.dropUnsupported.Add(1)
			return
		}
		e.echo(pkt, in, tid)
		return
	}
	var m *mapping
	if in.Proto == ippkt.ProtoTCP && !isSYN(pkt, in) {
		// Only a SYN opens a mapping; a stray segment (its tunnel's
		// flows were closed) gets the RST a host would send.
		if m = e.existingMapping(tid, in.Src); m == nil {
			e.refuse(pkt, in, tid)
			return
		}
	} else if m, err = e.mappingFor(tid, in.Src); err != nil {
		e.refuse(pkt, in, tid)
		return
	}
	if in.Proto == ippkt.ProtoUDP {
		key := flowKey{ippkt.ProtoUDP, netip.AddrPortFrom(m.internal, in.SrcPort), dst}
		if e.flowByKey(key) == nil && e.tunnelFull(tid) {
			e.stats.rejectedLimit.Add(1)
			e.refuse(pkt, in, tid)
			return
		}
	}
	e.injectMapped(pkt, in, m, scratch)
}

func (e *Exit) existingMapping(tid uint64, inner netip.Addr) *mapping {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tunnels[tid]; t != nil {
		return t.maps[inner]
	}
	return nil
}

func (e *Exit) injectMapped(pkt []byte, in ippkt.Info, m *mapping, scratch *[]byte) {
	b := append((*scratch)[:0], pkt...)
	*scratch = b
	if err := ippkt.SetSrc(b, in, m.internal); err != nil {
		e.stats.dropMalformed.Add(1)
		return
	}
	if in.Proto == ippkt.ProtoTCP {
		// Keep segments from the far side within the tunnel's MTU.
		adapter.ClampMSS(b, in, int(e.st.ep.MTU()))
	}
	m.touch()
	if !e.st.inject(b, in) {
		e.stats.dropChecksum.Add(1)
	}
}

// refuse answers a refused packet: RST for TCP, ICMP admin-prohibited for
// the rest, so that the client fails at once.
func (e *Exit) refuse(pkt []byte, in ippkt.Info, tid uint64) {
	b := getBuf()
	var err error
	if in.Proto == ippkt.ProtoTCP {
		*b, err = ippkt.Reset((*b)[:0], pkt)
	} else {
		*b, err = ippkt.Unreachable((*b)[:0], pkt)
	}
	if err != nil {
		putBuf(b)
		return
	}
	e.enqueue(b, tid)
}

// allowed applies the local-destination guard (its fast, cached half; see
// local.go) and the exit policy. It runs on every packet and again right
// before every dial, where checkDial follows it.
func (e *Exit) allowed(proto string, dst netip.AddrPort) error {
	a := dst.Addr().Unmap()
	if !e.cfg.allowLoopback && e.isLocal(a) {
		e.stats.rejectedLocal.Add(1)
		return errLocal
	}
	if ok, _ := e.policy().Allows(proto, dst); !ok {
		e.stats.rejectedPolicy.Add(1)
		return errPolicy
	}
	return nil
}

var (
	errLocal  = errors.New("pnat: destination is the exit host itself")
	errPolicy = errors.New("pnat: destination rejected by the exit policy")
)

func (e *Exit) isDNS(dst netip.AddrPort) bool {
	return dst.Port() == 53 && slices.Contains(e.cfg.dnsAddrs, dst.Addr().Unmap())
}

// unmap rewrites a stack packet's destination from the internal address
// to the tunnel's inner address and returns the tunnel.
func (e *Exit) unmap(pkt []byte) (uint64, bool) {
	in, err := ippkt.Parse(pkt)
	if err != nil {
		e.stats.dropMalformed.Add(1)
		return 0, false
	}
	if in.Proto != ippkt.ProtoTCP && in.Proto != ippkt.ProtoUDP {
		// The stack's own ICMP (errors quoting internal addresses,
		// neighbour discovery) must not reach clients.
		e.stats.dropUnsupported.Add(1)
		return 0, false
	}
	m := e.lookupInternal(in.Dst)
	if m == nil {
		e.stats.dropNoMapping.Add(1)
		return 0, false
	}
	if err := ippkt.SetDst(pkt, in, m.inner); err != nil {
		e.stats.dropMalformed.Add(1)
		return 0, false
	}
	m.touch()
	return m.t.id, true
}

// isSYN reports whether a TCP segment opens a connection (SYN, no ACK).
func isSYN(pkt []byte, in ippkt.Info) bool {
	return pkt[in.PayloadOffset+13]&0x12 == 0x02
}
