package exitpolicy

import (
	"encoding/binary"
	"net/netip"
)

// Embedded is an IPv4 address that an IPv6 address carries.
type Embedded struct {
	Addr netip.Addr // the IPv4 address
	Form string     // how it is carried, e.g. "6to4", "NAT64"
}

// The forms EmbeddedIPv4 recognises (Embedded.Form).
const (
	FormMapped     = "IPv4-mapped"     // ::ffff:0:0/96 (RFC 4291)
	FormCompatible = "IPv4-compatible" // ::/96, deprecated (RFC 4291)
	FormTranslated = "IPv4-translated" // ::ffff:0:0:0/96 (RFC 2765)
	FormNAT64      = "NAT64"           // 64:ff9b::/96 (RFC 6052)
	FormNAT64Local = "NAT64 local-use" // 64:ff9b:1::/48 (RFC 8215)
	Form6to4       = "6to4"            // 2002::/16 (RFC 3056)
	FormTeredoSrv  = "Teredo server"   // 2001::/32, bits 32-63 (RFC 4380)
	FormTeredoCli  = "Teredo client"   // 2001::/32, last 32 bits inverted
	FormISATAP     = "ISATAP"          // interface ID ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d (RFC 5214)
)

// MaxEmbedded bounds what one address yields (NAT64 local-use 4 plus
// ISATAP 1), so callers can use a stack buffer.
const MaxEmbedded = 8

var (
	nat64WKP   = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
	compatible = netip.MustParsePrefix("::/96")
	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// EmbeddedIPv4 appends to dst every IPv4 address that the IPv6 address a
// carries in one of the standard IPv4-in-IPv6 forms, and returns the
// extended slice. An IPv4-mapped a yields its IPv4 address (FormMapped);
// an IPv4 a yields nothing.
//
// Why an exit must know them: a packet to such an address does not stay
// IPv6. The exit's kernel hands ::a.b.c.d and 2002:aabb:ccdd::/48 to its
// sit tunnel, which sends IPv4 to a.b.c.d; a NAT64 translator on the
// exit's path (the well-known or the operator's local-use prefix) turns
// 64:ff9b::a.b.c.d into a connection to a.b.c.d; a Teredo or ISATAP
// relay on the host or its network does the same for the addresses its
// protocol embeds. So 64:ff9b::7f00:1 is 127.0.0.1 of whoever translates
// it, and the policy must judge the IPv4 address as well.
//
// For 64:ff9b:1::/48 the operator picks the layout (any RFC 6052 prefix
// of /48 or longer inside it) and the exit cannot know which, so every
// layout that fits is returned: /48, /56, /64 and /96.
//
// Forms defined only by an operator's choice (a network-specific NAT64
// prefix, 6rd) cannot be recognised from the address alone.
func EmbeddedIPv4(dst []Embedded, a netip.Addr) []Embedded {
	if a.Is4In6() {
		return append(dst, Embedded{a.Unmap(), FormMapped})
	}
	if !a.Is6() {
		return dst
	}
	a = a.WithZone("")
	b := a.As16()
	// Every form but ISATAP starts 0000, 0064, 2001 or 2002: the common
	// global address skips the prefix tests (this runs on every packet).
	switch binary.BigEndian.Uint16(b[:2]) {
	case 0x0000, 0x0064, 0x2001, 0x2002:
		dst = appendByPrefix(dst, a, &b)
	}
	// ISATAP works under any /64 prefix, so it is checked for every
	// address. Linux accepts the interface ID with the u/l bit either way
	// (ipv6_addr_is_isatap); so does this.
	if b[8]|0x02 == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		dst = append(dst, Embedded{v4(&b, 12, 13, 14, 15), FormISATAP})
	}
	return dst
}

func v4(b *[16]byte, i, j, k, l int) netip.Addr {
	return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]})
}

// appendByPrefix adds the forms defined by a well-known prefix.
func appendByPrefix(dst []Embedded, a netip.Addr, b *[16]byte) []Embedded {
	switch {
	case compatible.Contains(a):
		// :: and ::1 are IPv6's own unspecified and loopback addresses,
		// not IPv4 0.0.0.0 and 0.0.0.1 (Linux's __ipv6_addr_type agrees).
		if a != netip.IPv6Unspecified() && a != netip.IPv6Loopback() {
			dst = append(dst, Embedded{v4(b, 12, 13, 14, 15), FormCompatible})
		}
	case translated.Contains(a):
		dst = append(dst, Embedded{v4(b, 12, 13, 14, 15), FormTranslated})
	case nat64WKP.Contains(a):
		dst = append(dst, Embedded{v4(b, 12, 13, 14, 15), FormNAT64})
	case nat64Local.Contains(a):
		// RFC 6052 §2.2: bits 64-71 (byte 8) are always skipped.
		dst = append(dst,
			Embedded{v4(b, 6, 7, 9, 10), FormNAT64Local},    // /48
			Embedded{v4(b, 7, 9, 10, 11), FormNAT64Local},   // /56
			Embedded{v4(b, 9, 10, 11, 12), FormNAT64Local},  // /64
			Embedded{v4(b, 12, 13, 14, 15), FormNAT64Local}, // /96
		)
	case sixToFour.Contains(a):
		dst = append(dst, Embedded{v4(b, 2, 3, 4, 5), Form6to4})
	case teredo.Contains(a):
		var cli [4]byte
		binary.BigEndian.PutUint32(cli[:], ^binary.BigEndian.Uint32(b[12:]))
		dst = append(dst,
			Embedded{v4(b, 4, 5, 6, 7), FormTeredoSrv},
			Embedded{netip.AddrFrom4(cli), FormTeredoCli})
	}
	return dst
}
