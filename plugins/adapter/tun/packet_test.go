package tun

import (
	"encoding/binary"
	"net/netip"
)

// udpPacket builds an IPv4 or IPv6 UDP packet with correct checksums.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	s, d := src.Addr().AsSlice(), dst.Addr().AsSlice()
	pseudo := append(append(append([]byte{}, s...), d...), 0, 17)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	sum := checksum(append(pseudo, udp...))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	if src.Addr().Is4() {
		ip := make([]byte, 20, 20+len(udp))
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		copy(ip[12:], s)
		copy(ip[16:], d)
		binary.BigEndian.PutUint16(ip[10:], checksum(ip))
		return append(ip, udp...)
	}
	ip := make([]byte, 40, 40+len(udp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
	ip[6], ip[7] = 17, 64
	copy(ip[8:], s)
	copy(ip[24:], d)
	return append(ip, udp...)
}

// parseUDP returns the addresses and payload of an IPv4/IPv6 UDP packet.
func parseUDP(p []byte) (src, dst netip.AddrPort, payload []byte, ok bool) {
	var s, d netip.Addr
	var rest []byte
	switch {
	case len(p) >= 20 && p[0]>>4 == 4 && p[9] == 17:
		s, d = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		rest = p[int(p[0]&0xf)*4:]
	case len(p) >= 40 && p[0]>>4 == 6 && p[6] == 17:
		s, d = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		rest = p[40:]
	default:
		return src, dst, nil, false
	}
	if len(rest) < 8 {
		return src, dst, nil, false
	}
	src = netip.AddrPortFrom(s, binary.BigEndian.Uint16(rest[0:]))
	dst = netip.AddrPortFrom(d, binary.BigEndian.Uint16(rest[2:]))
	return src, dst, rest[8:], true
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
