// Package gso lets an adapter's gVisor stack send TCP in segments of up
// to 64 KiB and cuts them into packets of the link's MTU only where they
// leave the stack: in the adapter's ReadPackets, straight into the
// caller's buffers (segmentation offload, as a NIC does for a kernel).
//
// Why: in a download through the exit (pnat), the stack's TCP sender was
// 40 % of pnat's CPU, most of it per segment: splitting its write queue
// into MSS-sized segments (a packet buffer clone each), building each
// header, computing each checksum and passing each through the network
// layer, the NIC and the link endpoint's queue. With the link endpoint
// declaring host GSO (Endpoint), gVisor's TCP does that once per up to
// 64 KiB and leaves the TCP checksum to the link (CHECKSUM_PARTIAL, as
// with a kernel's TSO): Segmenter completes it per packet while it cuts.
//
// What a Segmenter produces is what gVisor's own segmentation would have
// sent: every packet MSS bytes of payload except the last; sequence
// numbers advanced; FIN and PSH only on the last packet, CWR only on the
// first; IPv4 identification advanced per packet and the IPv4 header
// checksum recomputed; IPv6 payload length set; every TCP checksum
// complete.
package gso

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// MaxSize is the largest packet the stack's TCP hands the link endpoint
// (gVisor keeps the IP length field in range: it sends at most MaxSize
// minus the largest TCP header, minus one, of payload).
const MaxSize = stack.GVisorGSOMaxSize

// Endpoint is a channel endpoint that declares host GSO of up to MaxSize
// bytes: the stack's TCP then writes large segments, with partial TCP
// checksums, which its reader cuts with a Segmenter.
type Endpoint struct{ *channel.Endpoint }

// GSOMaxSize implements stack.GSOEndpoint.
func (Endpoint) GSOMaxSize() uint32 { return MaxSize }

// SupportedGSO implements stack.GSOEndpoint.
func (Endpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// maxHeader bounds the IP and TCP headers a Segmenter copies for each
// packet: an IPv6 header with an extension (gVisor's experiment option)
// and a TCP header with the most options.
const maxHeader = header.IPv6MinimumSize + 64 + header.TCPHeaderMaximumSize

// Segmenter cuts one packet of the stack's TCP, whose checksum the stack
// left to the link, into packets of at most its MSS of payload. Load it,
// optionally rewrite its addresses through Header, then call Next until
// Done. It holds the packet's reference until it is done (or Release).
// The zero value is ready to Load. Not safe for concurrent use.
type Segmenter struct {
	pkb *stack.PacketBuffer

	hdr    [maxHeader]byte
	hl, l3 int  // header length, network header length
	v6     bool // IPv6
	mss    int
	left   int // payload bytes not yet emitted
	i      int // packets emitted
	seq    uint32
	id     uint16
	flags  uint8
	cur    *buffer.View // payload cursor: the view and the offset in it
	curOff int
}

// Needs reports whether pkb is a packet the stack left for the link to
// segment or checksum: every TCP packet of a stack on an Endpoint except
// the few it sends without its connection's GSO settings (a reset from no
// connection, for one), which carry complete checksums.
func Needs(pkb *stack.PacketBuffer) bool {
	t := pkb.GSOOptions.Type
	return pkb.GSOOptions.NeedsCsum && (t == stack.GSOTCPv4 || t == stack.GSOTCPv6)
}

// Load takes pkb (and the caller's reference to it), which Needs must
// have accepted. It reports false, and releases pkb, if its headers are
// not what gVisor's TCP writes (never expected).
func (s *Segmenter) Load(pkb *stack.PacketBuffer) bool {
	s.Release()
	nh, th := pkb.NetworkHeader().Slice(), pkb.TransportHeader().Slice()
	l3, l4 := len(nh), len(th)
	v6 := pkb.GSOOptions.Type == stack.GSOTCPv6
	if l4 < header.TCPMinimumSize || l3+l4 > maxHeader ||
		!v6 && (l3 < header.IPv4MinimumSize || nh[0]>>4 != 4) ||
		v6 && (l3 < header.IPv6MinimumSize || nh[0]>>4 != 6) {
		pkb.DecRef()
		return false
	}
	*s = Segmenter{pkb: pkb, hl: l3 + l4, l3: l3, v6: v6}
	copy(s.hdr[:], nh)
	copy(s.hdr[l3:], th)
	s.left = pkb.Data().Size()
	s.mss = int(pkb.GSOOptions.MSS)
	if s.mss <= 0 {
		s.mss = s.left
	}
	t := s.hdr[l3:s.hl]
	s.seq = binary.BigEndian.Uint32(t[4:])
	s.flags = t[13]
	s.id = binary.BigEndian.Uint16(s.hdr[4:])
	// The payload starts after the headers in the packet's views.
	vl, off := pkb.AsViewList()
	off += s.hl
	for v := vl.Front(); v != nil; v = v.Next() {
		if off < v.Size() {
			s.cur, s.curOff = v, off
			break
		}
		off -= v.Size()
	}
	return true
}

// Header is the loaded packet's IP and TCP headers, which the caller may
// change before the first Next (addresses, say: the TCP checksum is
// computed per packet, the IPv4 header checksum too).
func (s *Segmenter) Header() []byte { return s.hdr[:s.hl] }

// Done reports whether every packet was emitted (or nothing is loaded).
func (s *Segmenter) Done() bool { return s.pkb == nil }

// Len is the length of the next packet (0 when Done).
func (s *Segmenter) Len() int {
	if s.pkb == nil {
		return 0
	}
	return s.hl + min(s.mss, s.left)
}

// Next writes the next packet into dst and returns its length; if dst is
// too short it skips that packet and returns 0 (the caller counts it).
// After the last packet the segmenter releases the loaded packet.
func (s *Segmenter) Next(dst []byte) int {
	if s.pkb == nil {
		return 0
	}
	n := min(s.mss, s.left)
	total := s.hl + n
	last := n == s.left
	if total > len(dst) {
		s.skip(n)
		s.advance(n, last)
		return 0
	}
	p := dst[:total]
	copy(p, s.hdr[:s.hl])
	s.copyPayload(p[s.hl:])
	t := p[s.l3:]
	binary.BigEndian.PutUint32(t[4:], s.seq+uint32(s.i*s.mss))
	f := s.flags
	if !last {
		f &^= uint8(header.TCPFlagFin | header.TCPFlagPsh)
	}
	if s.i > 0 {
		f &^= uint8(header.TCPFlagCwr)
	}
	t[13] = f
	tcpLen := total - s.l3
	var xsum uint16
	if s.v6 {
		binary.BigEndian.PutUint16(p[4:], uint16(total-header.IPv6MinimumSize))
		xsum = checksum.Checksum(p[8:40], 0)
	} else {
		binary.BigEndian.PutUint16(p[2:], uint16(total))
		binary.BigEndian.PutUint16(p[4:], s.id+uint16(s.i))
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], ^checksum.Checksum(p[:s.l3], 0))
		xsum = checksum.Checksum(p[12:20], 0)
	}
	xsum = checksum.Combine(xsum, uint16(tcpLen))
	xsum = checksum.Combine(xsum, uint16(header.TCPProtocolNumber))
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:], ^checksum.Checksum(t[:tcpLen], xsum))
	s.advance(n, last)
	return total
}

func (s *Segmenter) advance(n int, last bool) {
	s.left -= n
	s.i++
	if last {
		s.Release()
	}
}

// copyPayload fills p from the payload cursor.
func (s *Segmenter) copyPayload(p []byte) {
	for len(p) > 0 && s.cur != nil {
		k := copy(p, s.cur.AsSlice()[s.curOff:])
		p = p[k:]
		s.curOff += k
		if s.curOff == s.cur.Size() {
			s.cur, s.curOff = s.cur.Next(), 0
		}
	}
}

func (s *Segmenter) skip(n int) {
	for n > 0 && s.cur != nil {
		k := min(n, s.cur.Size()-s.curOff)
		n -= k
		s.curOff += k
		if s.curOff == s.cur.Size() {
			s.cur, s.curOff = s.cur.Next(), 0
		}
	}
}

// Release drops the loaded packet, if any, and what is left of it.
func (s *Segmenter) Release() {
	if s.pkb != nil {
		s.pkb.DecRef()
		s.pkb, s.cur = nil, nil
	}
}

// Copy copies the whole of pkb into dst without allocating (as
// pkb.AsSlices would) and returns its length; false if dst is too short.
func Copy(dst []byte, pkb *stack.PacketBuffer) (int, bool) {
	size := pkb.Size()
	if size > len(dst) {
		return 0, false
	}
	vl, off := pkb.AsViewList()
	k := 0
	for v := vl.Front(); v != nil && k < size; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		k += copy(dst[k:size], b[off:])
		off = 0
	}
	return k, true
}
