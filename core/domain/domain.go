// Package domain maps an address to the domain hierarchy Tarzan selects
// over: relays and mimics are chosen uniformly over domains, not nodes, so
// an adversary who runs many machines inside a few subnets gains little.
//
// The hierarchy has three levels:
//
//	IPv4: /16, /24, host (/32)
//	IPv6: /32, /48, host (/128)
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the IPv4
// address it maps, so a dual-stack socket cannot move a peer into a
// different domain. Zones are dropped: a link-local zone names an interface
// of the observer, not a place in the network.
package domain

import "net/netip"

// Levels is the domain hierarchy of one address, from the widest domain
// down to the host itself.
type Levels [3]netip.Prefix

// Level indices into Levels.
const (
	TopLevel    = 0 // /16 (IPv4) or /32 (IPv6)
	MiddleLevel = 1 // /24 (IPv4) or /48 (IPv6)
	HostLevel   = 2 // /32 (IPv4) or /128 (IPv6)
)

var (
	bits4 = [3]int{16, 24, 32}
	bits6 = [3]int{32, 48, 128}
)

// Of returns the domain hierarchy of a. An invalid address gives zero
// prefixes at every level.
func Of(a netip.Addr) Levels {
	var l Levels
	a = normalize(a)
	if !a.IsValid() {
		return l
	}
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	for i, b := range bits {
		// Prefix cannot fail: a is valid, unzoned and b fits its family.
		l[i], _ = a.Prefix(b)
	}
	return l
}

// Top returns the widest domain of a: its /16 (IPv4) or /32 (IPv6). An
// invalid address gives the zero prefix.
func Top(a netip.Addr) netip.Prefix {
	a = normalize(a)
	if !a.IsValid() {
		return netip.Prefix{}
	}
	b := bits6[TopLevel]
	if a.Is4() {
		b = bits4[TopLevel]
	}
	p, _ := a.Prefix(b)
	return p
}

// SameTop reports whether a and b are valid addresses in the same top-level
// domain. Tunnels never put two hops in one top-level domain.
func SameTop(a, b netip.Addr) bool {
	ta := Top(a)
	return ta.IsValid() && ta == Top(b)
}

// normalize unmaps IPv4-mapped IPv6 addresses and drops zones.
func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}
