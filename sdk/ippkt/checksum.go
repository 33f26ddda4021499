package ippkt

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Sum adds b to the one's-complement running sum s (RFC 1071), unfolded.
func Sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// Fold folds a running sum and complements it: the value for a checksum
// field.
func Fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// Checksum is Fold(Sum(b, initial)).
func Checksum(b []byte, initial uint32) uint16 { return Fold(Sum(b, initial)) }

// PseudoSum is the running sum of the TCP/UDP/ICMPv6 pseudo-header.
func PseudoSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint32
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = Sum(a[:], Sum(b[:], 0))
	} else {
		a, b := src.As16(), dst.As16()
		s = Sum(a[:], Sum(b[:], 0))
	}
	return s + uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
}

// checksumOffset is where the transport checksum sits within the IP
// payload, or -1 when the address is not covered (ICMPv4) or the header
// is absent.
func checksumOffset(in Info) int {
	if !in.HasTransport() {
		return -1
	}
	switch in.Proto {
	case ProtoTCP:
		return 16
	case ProtoUDP:
		return 6
	case ProtoICMPv6:
		if in.Version == 6 {
			return 2
		}
	}
	return -1
}

// SetSrc rewrites the source address of pkt (described by in, from Parse)
// to a of the same family, updating the IPv4 header checksum and the
// transport checksum incrementally (RFC 1624).
func SetSrc(pkt []byte, in Info, a netip.Addr) error { return setAddr(pkt, in, a, true) }

// SetDst is SetSrc for the destination address.
func SetDst(pkt []byte, in Info, a netip.Addr) error { return setAddr(pkt, in, a, false) }

func setAddr(pkt []byte, in Info, a netip.Addr, src bool) error {
	var field []byte
	var na []byte
	switch {
	case in.Version == 4 && a.Is4():
		field = pkt[16:20]
		if src {
			field = pkt[12:16]
		}
		b := a.As4()
		na = b[:]
	case in.Version == 6 && a.Is6() && !a.Is4In6():
		field = pkt[24:40]
		if src {
			field = pkt[8:24]
		}
		b := a.As16()
		na = b[:]
	default:
		return fmt.Errorf("ippkt: cannot put %v into an IPv%d header", a, in.Version)
	}
	if in.Version == 4 {
		put16(pkt[10:], update(get16(pkt[10:]), field, na))
	}
	if off := checksumOffset(in); off >= 0 {
		c := pkt[in.PayloadOffset+off:]
		old := get16(c)
		if !(in.Proto == ProtoUDP && in.Version == 4 && old == 0) { // IPv4 UDP without checksum
			nc := update(old, field, na)
			if in.Proto == ProtoUDP && nc == 0 {
				nc = 0xffff
			}
			put16(c, nc)
		}
	}
	copy(field, na)
	return nil
}

// update adjusts checksum c for old bytes replaced by new (same even
// length): HC' = ~(~HC + ~m + m').
func update(c uint16, old, new []byte) uint16 {
	s := uint32(^c)
	for i := 0; i+1 < len(old); i += 2 {
		s += uint32(^get16(old[i:])) + uint32(get16(new[i:]))
	}
	return Fold(s)
}

// Verify checks the IPv4 header checksum and the TCP, UDP, ICMP or ICMPv6
// checksum of an unfragmented packet.
func Verify(pkt []byte) error {
	in, err := Parse(pkt)
	if err != nil {
		return err
	}
	pkt = pkt[:in.Length]
	if in.Version == 4 && Checksum(pkt[:in.PayloadOffset], 0) != 0 {
		return fmt.Errorf("%w: bad IPv4 header checksum", ErrMalformed)
	}
	if in.Fragment {
		return nil
	}
	t := pkt[in.PayloadOffset:]
	var s uint32
	switch {
	case in.Proto == ProtoTCP, in.Proto == ProtoICMPv6 && in.Version == 6:
		s = PseudoSum(in.Src, in.Dst, in.Proto, len(t))
	case in.Proto == ProtoUDP:
		if in.Version == 4 && get16(t[6:]) == 0 {
			return nil
		}
		s = PseudoSum(in.Src, in.Dst, in.Proto, len(t))
	case in.Proto == ProtoICMP && in.Version == 4:
	default:
		return nil
	}
	if Checksum(t, s) != 0 {
		return fmt.Errorf("%w: bad protocol %d checksum", ErrMalformed, in.Proto)
	}
	return nil
}

func get16(b []byte) uint16    { return binary.BigEndian.Uint16(b) }
func put16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
