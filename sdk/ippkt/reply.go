package ippkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrNoReply is returned by the reply builders for packets that must not
// be answered: ICMP errors, resets, and packets from an unspecified or
// multicast source.
var ErrNoReply = errors.New("ippkt: packet must not be answered")

// Minimum-MTU limits on an ICMP error (RFC 1812 §4.3.2.3, RFC 4443 §2.4).
const (
	maxICMPv4Error = 576
	maxICMPv6Error = 1280
)

// Unreachable appends to dst an "administratively prohibited" error for
// orig, from orig's destination back to its source: ICMPv4 type 3 code 13
// or ICMPv6 type 1 code 1, quoting as much of orig as fits in 576 (IPv4)
// or 1280 (IPv6) bytes.
func Unreachable(dst []byte, orig []byte) ([]byte, error) {
	in, err := replyable(orig)
	if err != nil {
		return dst, err
	}
	if in.Proto == ProtoICMP && in.Version == 4 && in.HasTransport() && isICMPv4Error(in.ICMPType) ||
		in.Proto == ProtoICMPv6 && in.Version == 6 && in.HasTransport() && in.ICMPType < 128 {
		return dst, ErrNoReply
	}
	orig = orig[:in.Length]
	limit, hdr, typ, code := maxICMPv4Error, 20, uint8(3), uint8(13)
	if in.Version == 6 {
		limit, hdr, typ, code = maxICMPv6Error, 40, 1, 1
	}
	quote := min(len(orig), limit-hdr-8)
	start := len(dst)
	dst = appendIPHeader(dst, in, hdr+8+quote, protoICMPFor(in.Version))
	icmp := len(dst)
	dst = append(dst, typ, code, 0, 0, 0, 0, 0, 0)
	dst = append(dst, orig[:quote]...)
	finish(dst[start:], in, icmp-start)
	return dst, nil
}

// Reset appends to dst a TCP RST answering the TCP segment orig, as RFC
// 9293 §3.10.7.1 prescribes for a connection that does not exist.
func Reset(dst []byte, orig []byte) ([]byte, error) {
	in, err := replyable(orig)
	if err != nil {
		return dst, err
	}
	if in.Proto != ProtoTCP || !in.HasTransport() || in.Fragment {
		return dst, fmt.Errorf("ippkt: reset: not an unfragmented TCP segment")
	}
	t := orig[in.PayloadOffset:in.Length]
	flags := t[13]
	if flags&0x04 != 0 {
		return dst, ErrNoReply
	}
	hdr := 20
	if in.Version == 6 {
		hdr = 40
	}
	start := len(dst)
	dst = appendIPHeader(dst, in, hdr+20, ProtoTCP)
	tcp := len(dst)
	dst = append(dst, make([]byte, 20)...)
	h := dst[tcp:]
	put16(h[0:], in.DstPort)
	put16(h[2:], in.SrcPort)
	if flags&0x10 != 0 { // ACK set: RST with seq = their ack
		copy(h[4:8], t[8:12])
		h[13] = 0x04
	} else {
		segLen := uint32(len(t) - int(t[12]>>4)*4)
		if flags&0x02 != 0 {
			segLen++
		}
		if flags&0x01 != 0 {
			segLen++
		}
		binary.BigEndian.PutUint32(h[8:], binary.BigEndian.Uint32(t[4:])+segLen)
		h[13] = 0x14 // RST|ACK
	}
	h[12] = 5 << 4
	finish(dst[start:], in, tcp-start)
	return dst, nil
}

// EchoReply appends to dst the ICMP or ICMPv6 echo reply to the echo
// request req, with its identifier, sequence number and data.
func EchoReply(dst []byte, req []byte) ([]byte, error) {
	in, err := replyable(req)
	if err != nil {
		return dst, err
	}
	if !IsEchoRequest(in) || in.Fragment {
		return dst, fmt.Errorf("ippkt: echo reply: not an unfragmented echo request")
	}
	body := req[in.PayloadOffset:in.Length]
	hdr := 20
	if in.Version == 6 {
		hdr = 40
	}
	start := len(dst)
	dst = appendIPHeader(dst, in, hdr+len(body), protoICMPFor(in.Version))
	icmp := len(dst)
	dst = append(dst, body...)
	dst[icmp] = 0 // echo reply
	if in.Version == 6 {
		dst[icmp] = 129
	}
	dst[icmp+2], dst[icmp+3] = 0, 0
	finish(dst[start:], in, icmp-start)
	return dst, nil
}

// IsEchoRequest reports whether in is an ICMP or ICMPv6 echo request.
func IsEchoRequest(in Info) bool {
	return in.HasTransport() && (in.Version == 4 && in.Proto == ProtoICMP && in.ICMPType == 8 ||
		in.Version == 6 && in.Proto == ProtoICMPv6 && in.ICMPType == 128)
}

func replyable(orig []byte) (Info, error) {
	in, err := Parse(orig)
	if err != nil {
		return in, err
	}
	if in.Src.IsUnspecified() || in.Src.IsMulticast() || in.Src == bcast4 {
		return in, ErrNoReply
	}
	return in, nil
}

func isICMPv4Error(t uint8) bool {
	switch t {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}

func protoICMPFor(version int) uint8 {
	if version == 6 {
		return ProtoICMPv6
	}
	return ProtoICMP
}

// appendIPHeader appends a header for a packet of total bytes from in.Dst
// to in.Src. Checksums are filled by finish.
func appendIPHeader(dst []byte, in Info, total int, proto uint8) []byte {
	if in.Version == 4 {
		s, d := in.Dst.As4(), in.Src.As4()
		dst = append(dst, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, proto, 0, 0)
		dst = append(dst, s[:]...)
		return append(dst, d[:]...)
	}
	s, d := in.Dst.As16(), in.Src.As16()
	pl := total - 40
	dst = append(dst, 0x60, 0, 0, 0, byte(pl>>8), byte(pl), proto, 64)
	dst = append(dst, s[:]...)
	return append(dst, d[:]...)
}

// finish fills the IPv4 header checksum and the transport checksum of a
// packet built by appendIPHeader whose transport header starts at off.
func finish(pkt []byte, orig Info, off int) {
	src, dst := orig.Dst, orig.Src
	if orig.Version == 4 {
		put16(pkt[10:], Checksum(pkt[:20], 0))
	}
	t := pkt[off:]
	switch proto := pkt[9]; {
	case orig.Version == 4 && proto == ProtoICMP:
		put16(t[2:], Checksum(t, 0))
	case orig.Version == 4 && proto == ProtoTCP:
		put16(t[16:], Checksum(t, PseudoSum(src, dst, proto, len(t))))
	case orig.Version == 6 && pkt[6] == ProtoICMPv6:
		put16(t[2:], Checksum(t, PseudoSum(src, dst, ProtoICMPv6, len(t))))
	case orig.Version == 6 && pkt[6] == ProtoTCP:
		put16(t[16:], Checksum(t, PseudoSum(src, dst, ProtoTCP, len(t))))
	case orig.Version == 4 && proto == ProtoUDP, orig.Version == 6 && pkt[6] == ProtoUDP:
		cs := Checksum(t, PseudoSum(src, dst, ProtoUDP, len(t)))
		if cs == 0 {
			cs = 0xffff // 0 means "no checksum" in UDP
		}
		put16(t[6:], cs)
	}
}

// AppendUDP appends to b an IP packet from src to dst (one family)
// carrying one UDP datagram with payload, with every checksum filled.
// Tests and tools use it to play a client; the core never makes UDP.
func AppendUDP(b []byte, src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	s, d := src.Addr(), dst.Addr()
	// An IPv4-mapped address stays IPv6 here: tests send such packets on
	// purpose (the exit must judge the IPv4 address they carry).
	if !s.IsValid() || !d.IsValid() || s.Is4() != d.Is4() || len(payload) > 65507 {
		return b, fmt.Errorf("ippkt: AppendUDP: bad addresses %v -> %v or payload of %d bytes", src, dst, len(payload))
	}
	in := Info{Version: 4, Src: d, Dst: s} // appendIPHeader answers in
	hdr := 20
	if s.Is6() {
		in.Version, hdr = 6, 40
	}
	start := len(b)
	b = appendIPHeader(b, in, hdr+8+len(payload), ProtoUDP)
	off := len(b)
	n := 8 + len(payload)
	b = append(b, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()), byte(n>>8), byte(n), 0, 0)
	b = append(b, payload...)
	finish(b[start:], in, off-start)
	return b, nil
}

// AppendICMP appends to b an IP packet from src to dst (one family)
// carrying the ICMP (IPv4) or ICMPv6 (IPv6) message msg, and fills the
// message's checksum.
func AppendICMP(b []byte, src, dst netip.Addr, msg []byte) ([]byte, error) {
	if src.Is4() != dst.Is4() || len(msg) < 4 || src.Is4In6() || dst.Is4In6() {
		return b, fmt.Errorf("ippkt: AppendICMP: bad addresses %v -> %v or short message", src, dst)
	}
	in := Info{Version: 4, Src: dst, Dst: src} // appendIPHeader answers in
	hdr := 20
	if src.Is6() {
		in.Version, hdr = 6, 40
	}
	start := len(b)
	b = appendIPHeader(b, in, hdr+len(msg), protoICMPFor(in.Version))
	off := len(b)
	b = append(b, msg...)
	b[off+2], b[off+3] = 0, 0
	finish(b[start:], in, off-start)
	return b, nil
}
