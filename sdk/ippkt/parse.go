// Package ippkt reads and patches raw IPv4 and IPv6 packets in place:
// header parsing, checksums, address rewriting, TCP MSS clamping, and the
// few replies an exit sends itself (ICMP administratively prohibited, TCP
// reset, ICMP echo reply).
//
// Nothing here allocates: Parse returns a value, the patchers edit the
// caller's buffer, and the builders append to a caller-supplied slice.
package ippkt

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Errors Parse wraps; callers branch on them.
var (
	ErrTruncated = errors.New("ippkt: truncated packet")
	ErrMalformed = errors.New("ippkt: malformed packet")
	ErrVersion   = errors.New("ippkt: not IPv4 or IPv6")
)

// Info describes one packet.
type Info struct {
	Version  int // 4 or 6
	Src, Dst netip.Addr
	// Proto is the transport protocol: the IPv4 protocol field, or the
	// IPv6 next header after the skipped extension headers.
	Proto            uint8
	SrcPort, DstPort uint16 // TCP/UDP ports; 0 if none
	ICMPType         uint8  // ICMP/ICMPv6 type; 0 if not ICMP
	// PayloadOffset is where the IP payload starts: the transport header,
	// after the IPv4 options or IPv6 extension headers.
	PayloadOffset int
	// Length is the packet's length from its IP header; bytes past it in
	// the buffer are link padding.
	Length int
	// Fragment is set for any fragment. Only the first fragment
	// (FragmentOffset 0) carries the transport header.
	Fragment       bool
	FragmentOffset int // in bytes
}

// HasTransport reports whether the transport header (ports, ICMP type) is
// present, i.e. the packet is not a later fragment.
func (in Info) HasTransport() bool { return in.FragmentOffset == 0 }

// Parse validates pkt's IP header and returns what it found. For IPv6 it
// skips hop-by-hop, routing, fragment and destination-options headers.
// The transport header of TCP, UDP and ICMP is length-checked.
func Parse(pkt []byte) (Info, error) {
	if len(pkt) < 1 {
		return Info{}, ErrTruncated
	}
	switch pkt[0] >> 4 {
	case 4:
		return parse4(pkt)
	case 6:
		return parse6(pkt)
	}
	return Info{}, ErrVersion
}

func parse4(pkt []byte) (Info, error) {
	if len(pkt) < 20 {
		return Info{}, ErrTruncated
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < 20 || total < ihl {
		return Info{}, ErrMalformed
	}
	if total > len(pkt) {
		return Info{}, ErrTruncated
	}
	in := Info{
		Version:       4,
		Src:           netip.AddrFrom4([4]byte(pkt[12:16])),
		Dst:           netip.AddrFrom4([4]byte(pkt[16:20])),
		Proto:         pkt[9],
		PayloadOffset: ihl,
		Length:        total,
	}
	frag := binary.BigEndian.Uint16(pkt[6:])
	in.FragmentOffset = int(frag&0x1fff) * 8
	in.Fragment = frag&0x2000 != 0 || in.FragmentOffset != 0
	return in, parseTransport(&in, pkt[:total])
}

func parse6(pkt []byte) (Info, error) {
	if len(pkt) < 40 {
		return Info{}, ErrTruncated
	}
	total := 40 + int(binary.BigEndian.Uint16(pkt[4:]))
	if total > len(pkt) {
		return Info{}, ErrTruncated
	}
	in := Info{
		Version: 6,
		Src:     netip.AddrFrom16([16]byte(pkt[8:24])),
		Dst:     netip.AddrFrom16([16]byte(pkt[24:40])),
		Length:  total,
	}
	next, off := pkt[6], 40
	// A bound on the header chain: a packet of 1280 bytes holds at most
	// 155 8-byte headers; real ones have two or three.
	for range 16 {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+8 > total {
				return Info{}, ErrTruncated
			}
			next, off = pkt[off], off+(int(pkt[off+1])+1)*8
		case 44: // fragment
			if off+8 > total {
				return Info{}, ErrTruncated
			}
			fo := binary.BigEndian.Uint16(pkt[off+2:])
			in.Fragment = true
			in.FragmentOffset = int(fo>>3) * 8
			next, off = pkt[off], off+8
		default:
			if off > total {
				return Info{}, ErrTruncated
			}
			in.Proto, in.PayloadOffset = next, off
			return in, parseTransport(&in, pkt[:total])
		}
	}
	return Info{}, ErrMalformed
}

func parseTransport(in *Info, pkt []byte) error {
	if !in.HasTransport() {
		return nil
	}
	t := pkt[in.PayloadOffset:]
	switch in.Proto {
	case ProtoTCP:
		if len(t) < 20 {
			return ErrTruncated
		}
		if d := int(t[12]>>4) * 4; d < 20 || d > len(t) {
			return ErrMalformed
		}
		in.SrcPort, in.DstPort = binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:])
	case ProtoUDP:
		if len(t) < 8 {
			return ErrTruncated
		}
		in.SrcPort, in.DstPort = binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:])
	case ProtoICMP, ProtoICMPv6:
		if (in.Proto == ProtoICMP) != (in.Version == 4) {
			return nil // ICMP in IPv6 or ICMPv6 in IPv4: opaque payload
		}
		if len(t) < 8 {
			return ErrTruncated
		}
		in.ICMPType = t[0]
	}
	return nil
}

var bcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})
