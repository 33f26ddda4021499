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
//	        | "private"                       every range Default rejects: not globally
//	                                          reachable unicast (loopback, RFC 1918,
//	                                          link-local, CGNAT, documentation,
//	                                          benchmarking, reserved, multicast, ULA)
//	        | IPv4 ["/" bits]                 e.g. 10.0.0.0/8, 192.0.2.1
//	        | "[" IPv6 "]" ["/" bits]         e.g. [::]/0, [fe80::]/10
//	        | IPv6 ["/" bits]                 only without ports
//	ports   = "*" | range *("," range)        range = N | N "-" M, 1..65535
//
// A port list or "private" expands into several Rules (one per range or
// prefix) that share action and protocol. ICMP has no ports: an ICMP
// destination is matched with port 0, so only rules over all ports match it.
//
// IPv4-mapped IPv6 destinations (::ffff:a.b.c.d) are evaluated as IPv4.
// Every other IPv6 destination that carries an IPv4 address (EmbeddedIPv4:
// IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo, ISATAP) is
// evaluated as itself and as each IPv4 address it carries, and is accepted
// only if every one of those is accepted: whoever delivers it (the exit's
// kernel, a NAT64 or 6to4 relay on its path) delivers it to the IPv4
// address, so it must never be easier to reach that way than directly.
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
// (the zero Rule when none matched and the default reject applied). See
// Check for the address the rule was matched against.
func (p *Policy) Allows(proto string, dst netip.AddrPort) (bool, Rule) {
	v := p.Check(proto, dst)
	return v.Allowed, v.Rule
}

// Verdict is the policy's decision on one destination, and why.
type Verdict struct {
	Allowed bool
	// Rule decided; the zero Rule when no rule matched (default reject).
	Rule Rule
	// Dst is the destination address asked for (without zone).
	Dst netip.Addr
	// Judged is the address Rule was matched against: Dst (unmapped) or
	// an IPv4 address Dst carries.
	Judged netip.Addr
	// Form says how Dst carries Judged (Embedded.Form); "" when Judged
	// is Dst itself.
	Form string
}

// String gives the verdict and its reason, e.g.
// "reject 127.0.0.1 (6to4 in 2002:7f00:1::1) by rule reject 127.0.0.0/8".
func (v Verdict) String() string {
	var b strings.Builder
	if v.Allowed {
		b.WriteString("accept ")
	} else {
		b.WriteString("reject ")
	}
	b.WriteString(v.Judged.String())
	if v.Form != "" {
		b.WriteString(" (" + v.Form + " in " + v.Dst.String() + ")")
	}
	if v.Rule == (Rule{}) {
		b.WriteString(": no rule matched")
	} else {
		b.WriteString(" by rule " + v.Rule.String())
	}
	return b.String()
}

// Check decides on traffic of proto to dst as Allows does and says which
// address and rule decided. An IPv6 destination that carries IPv4
// addresses (EmbeddedIPv4) is accepted only when it and every IPv4
// address it carries are accepted, with the same protocol and port: the
// exit's kernel or a NAT64/6to4/Teredo/ISATAP relay on its path would
// deliver the packet to that IPv4 address, so the stricter verdict holds.
// A rejection names the first address that was rejected, the carried
// IPv4 addresses first.
func (p *Policy) Check(proto string, dst netip.AddrPort) Verdict {
	proto = normProto(proto)
	v := Verdict{Dst: dst.Addr().WithZone("")}
	v.Judged = v.Dst
	if v.Dst.Is4In6() {
		v.Judged, v.Form = v.Dst.Unmap(), FormMapped
	}
	if p == nil {
		return v
	}
	if v.Judged.Is6() {
		var buf [MaxEmbedded]Embedded
		for _, e := range EmbeddedIPv4(buf[:0], v.Judged) {
			if ok, r := p.first(proto, netip.AddrPortFrom(e.Addr, dst.Port())); !ok {
				v.Rule, v.Judged, v.Form = r, e.Addr, e.Form
				return v
			}
		}
	}
	v.Allowed, v.Rule = p.first(proto, netip.AddrPortFrom(v.Judged, dst.Port()))
	return v
}

// first applies the first matching rule to an unmapped destination.
// It runs once per address judged on every forwarded packet, so it reads
// the rules in place and tests the cheap fields before the prefix.
func (p *Policy) first(proto string, dst netip.AddrPort) (bool, Rule) {
	a, port := dst.Addr(), dst.Port()
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Proto != "" && r.Proto != proto {
			continue
		}
		if !r.allPorts() && (port < r.PortLo || port > r.PortHi) {
			continue
		}
		if r.Prefix.IsValid() && !r.Prefix.Contains(a) {
			continue
		}
		return r.Action == Accept, *r
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
// every IPv4 and IPv6 range that is not globally reachable unicast
// (IANA's special-purpose registries), so that nothing a client asks for
// lands on the exit's host, its local networks, or addresses that mean
// something only to the exit's own stack or operator. The order is fixed:
// format recognises the block by it.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),      // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation TEST-NET-1
	netip.MustParsePrefix("192.168.0.0/16"),  // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and limited broadcast 255.255.255.255
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("64:ff9b:1::/48"),  // NAT64 local-use (RFC 8215): the operator's own translator
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking (RFC 5180)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // site-local, deprecated but still routed by some stacks
	netip.MustParsePrefix("ff00::/8"),        // multicast
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
