package redteam

import (
	"encoding/binary"
	"net/netip"

	"github.com/tarzan-net/tarzan/core/ippkt"
)

// udpPacket builds a minimal IPv4 or IPv6 UDP packet from src to dst with
// valid checksums (the exit parses and checks it like any client packet).
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	udpLen := 8 + len(payload)
	var pkt []byte
	var udp []byte
	if dst.Addr().Is4() {
		pkt = make([]byte, 20+udpLen)
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = 17
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(pkt[12:16], s[:])
		copy(pkt[16:20], d[:])
		binary.BigEndian.PutUint16(pkt[10:], ippkt.Checksum(pkt[:20], 0))
		udp = pkt[20:]
	} else {
		pkt = make([]byte, 40+udpLen)
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(udpLen))
		pkt[6] = 17
		pkt[7] = 64
		s, d := src.Addr().As16(), dst.Addr().As16()
		copy(pkt[8:24], s[:])
		copy(pkt[24:40], d[:])
		udp = pkt[40:]
	}
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	copy(udp[8:], payload)
	sum := ippkt.Checksum(udp, ippkt.PseudoSum(src.Addr(), dst.Addr(), 17, udpLen))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return pkt
}
