package adapter

import (
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// The facts both sides of the adapter boundary must agree on, written
// once here: the core, the shipped adapters and third-party ones all use
// these, so that changing one cannot leave another behind.

// InnerMTU is the largest IP packet a tunnel carries (docs/PROTOCOL.md
// §1): an IPv6 minimum-MTU packet fits one relay payload.
const InnerMTU = 1280

// The in-tunnel resolver addresses (docs/PROTOCOL.md §10): a client's
// resolver sends its queries there, and every exit answers them with its
// own resolver whatever its policy says about the range. A node can
// change them (Config.DNS carries the node's choice); these are the
// defaults.
var (
	DNSv4 = netip.AddrFrom4([4]byte{100, 64, 0, 53})
	DNSv6 = netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x7a, 0x72, 0x7a, 0x6e, 15: 0x53})
)

// DefaultDNS returns the default in-tunnel resolver addresses, IPv4
// first (a fresh slice the caller may keep).
func DefaultDNS() []netip.Addr { return []netip.Addr{DNSv4, DNSv6} }

// The default addresses of a client adapter's end of the tunnel: in the
// same prefixes as the resolver, so that it is reached through the
// adapter (a TUN routes its own prefix into itself).
var (
	ClientPrefix4 = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, 2}), 10)
	ClientPrefix6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x7a, 0x72, 0x7a, 0x6e, 15: 0x02}), 64)
)

// MSS is the TCP maximum segment size that keeps a segment of an IPv4
// (version 4) or IPv6 packet within mtu: the IP and TCP headers without
// options (20+20 or 40+20 bytes) come off.
func MSS(mtu, version int) uint16 {
	if version == 6 {
		return uint16(mtu - 40 - 20)
	}
	return uint16(mtu - 20 - 20)
}

// ClampMSS is the MSS rule: a TCP SYN (either direction) whose MSS option
// is above MSS(mtu, in.Version) is lowered to it, the checksum fixed in
// place; it reports whether it changed pkt. in is ippkt.Parse's result for
// pkt (the caller parsed it already; addresses rewritten since are fine).
// Without it a SYN advertising 1460 makes the far end send segments a
// tunnel cannot carry.
func ClampMSS(pkt []byte, in ippkt.Info, mtu int) bool {
	return ippkt.ClampMSSParsed(pkt, in, MSS(mtu, in.Version))
}

// Protocol names, as exit policies and logs spell them.
const (
	ProtoNameTCP    = "tcp"
	ProtoNameUDP    = "udp"
	ProtoNameICMP   = "icmp"
	ProtoNameICMPv6 = "icmpv6" // an exit policy counts it as "icmp"
)

// ProtoName returns the name of IP protocol number p, or "" for any
// protocol a tunnel does not carry.
func ProtoName(p uint8) string {
	switch p {
	case ippkt.ProtoTCP:
		return ProtoNameTCP
	case ippkt.ProtoUDP:
		return ProtoNameUDP
	case ippkt.ProtoICMP:
		return ProtoNameICMP
	case ippkt.ProtoICMPv6:
		return ProtoNameICMPv6
	}
	return ""
}

// ProtoNumber is ProtoName's inverse; ok is false for an unknown name.
func ProtoNumber(name string) (p uint8, ok bool) {
	switch name {
	case ProtoNameTCP:
		return ippkt.ProtoTCP, true
	case ProtoNameUDP:
		return ippkt.ProtoUDP, true
	case ProtoNameICMP:
		return ippkt.ProtoICMP, true
	case ProtoNameICMPv6:
		return ippkt.ProtoICMPv6, true
	}
	return 0, false
}
