package ipservice

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// Flows that cannot survive end with a reset, at once. When a tunnel's
// exit is lost (the tunnel closed, or it is rebuilt on a fresh path) or
// an exit's adapter restarted and forgot its NAT state, every TCP
// connection through it is dead; left alone, an application that only
// receives waits for its own timeouts (minutes). So both ends keep a small
// tracker of the TCP flows they carry, and on such a loss synthesize for
// each one a RST "from the server" that the application's TCP accepts.
//
// Which sequence number: a RST is accepted (RFC 5961 §3.2, what Linux
// does) only if its sequence number is exactly the receiver's RCV.NXT;
// one merely inside the window draws a challenge ACK, one outside it is
// dropped. RCV.NXT is the ACK the application sent last, unless data
// from the server reached it after that: then it is the end of that data
// (when it arrived in order). The tracker knows both and sends a RST for
// each candidate, so one of them is exact; the other is at worst answered
// with a challenge ACK. A connection still in SYN-SENT (no ACK from the
// application yet) gets RST|ACK acknowledging its SYN, the only form
// SYN-SENT accepts (ippkt.Reset does that).

// maxTrackedFlows bounds the TCP flows one tunnel or exit circuit
// tracks; past it the least recently seen flow is forgotten (counted
// under FlowsEvicted) and only misses its reset.
const maxTrackedFlows = 256

// flowKey is a TCP flow as the application sees it.
type flowKey struct {
	app, srv netip.AddrPort
}

// tcpFlow is what a reset needs: the application's send state (its next
// sequence number and its last ACK) and how far the server's data that
// reached it goes.
type tcpFlow struct {
	sndNext uint32 // the application's next sequence number
	ack     uint32 // the application's last acknowledgement
	acked   bool   // its last segment carried ACK (not SYN-SENT)
	rcvEnd  uint32 // end of the server's highest segment delivered to it
	rcvOK   bool
	finApp  bool
	finSrv  bool
	seen    uint64 // tracker clock of the last segment, for eviction
}

// flowTracker holds the TCP flows through one tunnel (client side) or one
// exit circuit (exit side). The zero value is ready to use.
type flowTracker struct {
	mu    sync.Mutex
	m     map[flowKey]*tcpFlow
	clock uint64
}

// tcpSeg is the part of a TCP header the tracker reads.
type tcpSeg struct {
	seq, ack uint32
	flags    byte
	len      uint32 // sequence space: payload plus SYN and FIN
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// parseSeg reads the TCP header of a parsed packet; ok is false for
// anything that is not a whole TCP segment.
func parseSeg(pkt []byte, in ippkt.Info) (tcpSeg, bool) {
	if in.Proto != ippkt.ProtoTCP || !in.HasTransport() || in.Fragment || in.Length > len(pkt) {
		return tcpSeg{}, false
	}
	t := pkt[in.PayloadOffset:in.Length]
	if len(t) < 20 {
		return tcpSeg{}, false
	}
	s := tcpSeg{seq: binary.BigEndian.Uint32(t[4:]), ack: binary.BigEndian.Uint32(t[8:]), flags: t[13]}
	s.len = uint32(len(t) - int(t[12]>>4)*4)
	if s.flags&tcpSYN != 0 {
		s.len++
	}
	if s.flags&tcpFIN != 0 {
		s.len++
	}
	return s, true
}

// after reports whether sequence number a is later than b (RFC 1982).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// fromApp records a packet the application sent (toward the server). It
// returns true when the tracker was full and forgot a flow for this one.
func (ft *flowTracker) fromApp(pkt []byte, in ippkt.Info) (evicted bool) {
	s, ok := parseSeg(pkt, in)
	if !ok {
		return false
	}
	k := flowKey{app: netip.AddrPortFrom(in.Src, in.SrcPort), srv: netip.AddrPortFrom(in.Dst, in.DstPort)}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if s.flags&tcpRST != 0 {
		delete(ft.m, k)
		return false
	}
	f := ft.m[k]
	fresh := f == nil
	if fresh {
		if ft.m == nil {
			ft.m = map[flowKey]*tcpFlow{}
		}
		if len(ft.m) >= maxTrackedFlows {
			ft.evictOldest()
			evicted = true
		}
		f = &tcpFlow{}
		ft.m[k] = f
	}
	ft.clock++
	f.seen = ft.clock
	if end := s.seq + s.len; fresh || after(end, f.sndNext) {
		f.sndNext = end
	}
	// A segment reordered on its way here must not take the ACK back.
	if s.flags&tcpACK != 0 && (!f.acked || after(s.ack, f.ack)) {
		f.ack, f.acked = s.ack, true
	}
	if s.flags&tcpFIN != 0 {
		f.finApp = true
	}
	if f.finApp && f.finSrv {
		delete(ft.m, k)
	}
	return evicted
}

// toApp records a packet delivered to the application (from the server).
// Only flows the application opened are tracked.
func (ft *flowTracker) toApp(pkt []byte, in ippkt.Info) {
	s, ok := parseSeg(pkt, in)
	if !ok {
		return
	}
	k := flowKey{app: netip.AddrPortFrom(in.Dst, in.DstPort), srv: netip.AddrPortFrom(in.Src, in.SrcPort)}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	f := ft.m[k]
	if f == nil {
		return
	}
	if s.flags&tcpRST != 0 {
		delete(ft.m, k)
		return
	}
	if end := s.seq + s.len; !f.rcvOK || after(end, f.rcvEnd) {
		f.rcvEnd, f.rcvOK = end, true
	}
	if s.flags&tcpFIN != 0 {
		f.finSrv = true
	}
	if f.finApp && f.finSrv {
		delete(ft.m, k)
	}
}

func (ft *flowTracker) evictOldest() {
	var oldest flowKey
	var min uint64
	first := true
	for k, f := range ft.m {
		if first || f.seen < min {
			oldest, min, first = k, f.seen, false
		}
	}
	delete(ft.m, oldest)
}

// count is how many flows are tracked.
func (ft *flowTracker) count() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.m)
}

// resets forgets every tracked flow and returns, for each, the RSTs from
// the server to the application that end it (see the file comment), and
// how many flows they end.
func (ft *flowTracker) resets() (out [][]byte, flows int) {
	ft.mu.Lock()
	m := ft.m
	ft.m = nil
	ft.mu.Unlock()
	var seg [60]byte
	for k, f := range m {
		if !f.acked {
			// SYN-SENT: answer the SYN (RST|ACK, ack = its end).
			if rst, err := ippkt.Reset(nil, appSegment(seg[:0], k, f.sndNext, 0, 0)); err == nil {
				out = append(out, rst)
			}
			continue
		}
		if f.rcvOK && after(f.rcvEnd, f.ack) {
			if rst, err := ippkt.Reset(nil, appSegment(seg[:0], k, f.sndNext, f.rcvEnd, tcpACK)); err == nil {
				out = append(out, rst)
			}
		}
		if rst, err := ippkt.Reset(nil, appSegment(seg[:0], k, f.sndNext, f.ack, tcpACK)); err == nil {
			out = append(out, rst)
		}
	}
	return out, len(m)
}

// appSegment appends a header-only TCP segment from the application to
// the server: ippkt.Reset answers it with the RST we want (from the
// server, seq = ack when ACK is set, else RST|ACK acknowledging seq).
// Checksums are left zero: the segment is never sent.
func appSegment(b []byte, k flowKey, seq, ack uint32, flags byte) []byte {
	src, dst := k.app.Addr(), k.srv.Addr()
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		b = append(b, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, ippkt.ProtoTCP, 0, 0)
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		s, d := src.As16(), dst.As16()
		b = append(b, 0x60, 0, 0, 0, 0, 20, ippkt.ProtoTCP, 64)
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, k.app.Port())
	b = binary.BigEndian.AppendUint16(b, k.srv.Port())
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	return append(b, 5<<4, flags, 0, 0, 0, 0, 0, 0)
}

// trackFromApp feeds a tracker and counts a flow it had to forget.
func (s *Service) trackFromApp(ft *flowTracker, pkt []byte, in ippkt.Info) {
	if ft.fromApp(pkt, in) {
		s.inc(FlowsEvicted)
	}
}

// exitLost is called when no flow through the tunnel's exit can
// continue: the tunnel closed, or it is being rebuilt on a fresh path (a
// new exit; node.TunnelEvents.ExitLost). Every TCP flow the tunnel
// carried gets its reset now, so the application gives up at once and
// its next connection takes a healthy tunnel.
func (it *ipTunnel) exitLost() {
	rsts, flows := it.flows.resets()
	it.s.add(FlowsReset, uint64(flows)) // before the resets: seen reset, seen counted
	for _, rst := range rsts {
		it.s.deliverClient(it.flow.Load(), rst)
	}
}

// fromExit hands a DATA packet from the tunnel's exit to the application
// and notes it in the tunnel's tracker (node.TunnelEvents.Data).
func (it *ipTunnel) fromExit(pkt []byte) {
	if in, err := ippkt.Parse(pkt); err == nil {
		it.flows.toApp(pkt, in)
	}
	it.s.deliverClientBatch(it.flow.Load(), pkt)
}
