// Package exitpolicy decides which destinations an exit relay serves.
//
// A Policy is an ordered list of accept/reject rules over address prefixes,
// destination ports and an optional transport protocol, like Tor's
// ExitPolicy: the first rule that matches decides, and a destination that no
// rule matches is rejected (the safe default for an exit).
//
// Rule syntax (Parse takes one rule per line; String and Summary join rules
// with "; "):
//
//	rule    = action [proto] target [":" ports]
//	action  = "accept" | "reject"
//	proto   = "tcp" | "udp" | "icmp"          (absent: any protocol)
//	target  = "*"                             any address, IPv4 or IPv6
//	        | "*4" | "*6"                     any IPv4 / any IPv6 address
//	        | "private"                       every special-purpose range of Default
//	        | IPv4 ["/" bits]                 e.g. 10.0.0.0/8, 192.0.2.1
//	        | "[" IPv6 "]" ["/" bits]         e.g. [::]/0, [fe80::]/10
//	        | IPv6 ["/" bits]                 only without ports
//	ports   = "*" | range *("," range)        range = N | N "-" M, 1..65535
//
// A port list or "private" expands into several Rules (one per range or
// prefix) that share action and protocol. ICMP has no ports: an ICMP
// destination is matched with port 0, so only rules over all ports match it.
// IPv4-mapped IPv6 destinations (::ffff:a.b.c.d) are evaluated as IPv4.
package exitpolicy

import (
	"errors"
	"net/netip"
	"strings"
)

// Action is what a matching rule does.
type Action int

const (
	Accept Action = iota + 1
	Reject
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	}
	return "invalid"
}

// Rule is one line of a policy.
type Rule struct {
	Action Action
	// Prefix the destination must fall in. The zero Prefix (not valid)
	// means any address of either family ("*").
	Prefix netip.Prefix
	// PortLo..PortHi inclusive; 0,0 means all ports (and ICMP).
	PortLo, PortHi uint16
	// Proto is "", "tcp", "udp" or "icmp"; "" matches any protocol.
	Proto string
}

// Policy is an ordered rule list; the first match wins.
type Policy struct {
	Rules []Rule
}

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("exitpolicy: syntax error")

// MaxSummary is the longest Summary, in bytes (the descriptor's limit).
const MaxSummary = 256

// Matches reports whether r covers proto and dst. dst must already be
// unmapped (Allows does that).
func (r Rule) Matches(proto string, dst netip.AddrPort) bool {
	if r.Proto != "" && r.Proto != proto {
		return false
	}
	if r.Prefix.IsValid() && !r.Prefix.Contains(dst.Addr()) {
		return false
	}
	if r.allPorts() {
		return true
	}
	p := dst.Port()
	return p >= r.PortLo && p <= r.PortHi
}

func (r Rule) allPorts() bool { return r.PortLo == 0 && r.PortHi == 0 }

// Allows reports whether the policy accepts traffic of proto ("tcp", "udp"
// or "icmp"; "icmp6" counts as "icmp") to dst, and the rule that decided
// (the zero Rule when none matched and the default reject applied).
func (p *Policy) Allows(proto string, dst netip.AddrPort) (bool, Rule) {
	proto = normProto(proto)
	dst = netip.AddrPortFrom(dst.Addr().Unmap().WithZone(""), dst.Port())
	if p == nil {
		return false, Rule{}
	}
	for _, r := range p.Rules {
		if r.Matches(proto, dst) {
			return r.Action == Accept, r
		}
	}
	return false, Rule{}
}

func normProto(p string) string {
	p = strings.ToLower(p)
	switch p {
	case "icmp6", "icmpv6", "ipv6-icmp":
		return "icmp"
	}
	return p
}

// privateRanges is what "private" stands for and what Default rejects:
// loopback, RFC 1918 and ULA, CGNAT, link-local, multicast, unspecified
// ("this network") and limited broadcast.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// Default rejects every private and special-purpose destination and accepts
// everything else: "reject private; accept *".
func Default() *Policy {
	p := &Policy{}
	for _, pf := range privateRanges {
		p.Rules = append(p.Rules, Rule{Action: Reject, Prefix: pf})
	}
	p.Rules = append(p.Rules, Rule{Action: Accept})
	return p
}
