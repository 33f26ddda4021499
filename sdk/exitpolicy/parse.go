package exitpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Parse reads one rule per element of lines (syntax in the package
// comment). Blank elements and elements starting with '#' are skipped.
// Errors wrap ErrSyntax and name the 1-based rule index and the bad token.
func Parse(lines []string) (*Policy, error) {
	p := &Policy{}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rules, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("%w: rule %d (%q): %v", ErrSyntax, i+1, line, err)
		}
		p.Rules = append(p.Rules, rules...)
	}
	return p, nil
}

// ParseSummary parses a descriptor's policy summary (rules joined by ";",
// at most MaxSummary bytes). The empty summary accepts nothing.
func ParseSummary(s string) (*Policy, error) {
	if len(s) > MaxSummary {
		return nil, fmt.Errorf("%w: summary is %d bytes, limit %d", ErrSyntax, len(s), MaxSummary)
	}
	return Parse(strings.Split(s, ";"))
}

func parseRule(line string) ([]Rule, error) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 {
		return nil, fmt.Errorf("want \"accept|reject [tcp|udp|icmp] target[:ports]\", got %d tokens", len(f))
	}
	var r Rule
	switch strings.ToLower(f[0]) {
	case "accept":
		r.Action = Accept
	case "reject":
		r.Action = Reject
	default:
		return nil, fmt.Errorf("bad token %q: want accept or reject", f[0])
	}
	if len(f) == 3 {
		switch p := strings.ToLower(f[1]); p {
		case "tcp", "udp", "icmp":
			r.Proto = p
		default:
			return nil, fmt.Errorf("bad token %q: want tcp, udp or icmp", f[1])
		}
	}
	target := f[len(f)-1]
	addrPart, portPart, err := splitTarget(target)
	if err != nil {
		return nil, err
	}
	prefixes, err := parseAddrs(addrPart)
	if err != nil {
		return nil, err
	}
	ranges := [][2]uint16{{0, 0}}
	if portPart != "" {
		if ranges, err = parsePorts(portPart); err != nil {
			return nil, err
		}
	}
	if r.Proto == "icmp" && (len(ranges) != 1 || ranges[0] != [2]uint16{0, 0}) {
		return nil, fmt.Errorf("bad token %q: icmp has no ports", target)
	}
	out := make([]Rule, 0, len(prefixes)*len(ranges))
	for _, pf := range prefixes {
		for _, pr := range ranges {
			r.Prefix, r.PortLo, r.PortHi = pf, pr[0], pr[1]
			out = append(out, r)
		}
	}
	return out, nil
}

// splitTarget separates "addr[/bits]" from the optional ":ports".
func splitTarget(t string) (addr, ports string, err error) {
	if strings.HasPrefix(t, "[") {
		end := strings.IndexByte(t, ']')
		if end < 0 {
			return "", "", fmt.Errorf("bad token %q: missing ']'", t)
		}
		addr, rest := t[1:end], t[end+1:]
		if strings.HasPrefix(rest, "/") {
			n := strings.IndexByte(rest, ':')
			if n < 0 {
				n = len(rest)
			}
			addr, rest = addr+rest[:n], rest[n:]
		}
		if rest == "" {
			return addr, "", nil
		}
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return "", "", fmt.Errorf("bad token %q: want ':ports' after the address", t)
		}
		if !strings.Contains(addr, ":") {
			return "", "", fmt.Errorf("bad token %q: brackets are for IPv6 only", t)
		}
		return addr, rest[1:], nil
	}
	if strings.Count(t, ":") > 1 { // bare IPv6, no ports
		return t, "", nil
	}
	if i := strings.IndexByte(t, ':'); i >= 0 {
		if i == len(t)-1 {
			return "", "", fmt.Errorf("bad token %q: empty port list", t)
		}
		return t[:i], t[i+1:], nil
	}
	return t, "", nil
}

func parseAddrs(s string) ([]netip.Prefix, error) {
	switch strings.ToLower(s) {
	case "*":
		return []netip.Prefix{{}}, nil
	case "*4":
		return []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}, nil
	case "*6":
		return []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), 0)}, nil
	case "private":
		return append([]netip.Prefix(nil), privateRanges...), nil
	}
	var pf netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		pf, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			pf, err = a.Prefix(a.BitLen())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bad token %q: not an address or prefix", s)
	}
	if pf.Addr().Zone() != "" {
		return nil, fmt.Errorf("bad token %q: zones are not allowed", s)
	}
	if pf.Addr().Is4In6() {
		// Destinations are unmapped before matching; unmap the rule too.
		bits := pf.Bits() - 96
		if bits < 0 {
			return nil, fmt.Errorf("bad token %q: an IPv4-mapped prefix needs at least /96", s)
		}
		pf = netip.PrefixFrom(pf.Addr().Unmap(), bits)
	}
	return []netip.Prefix{pf.Masked()}, nil
}

func parsePorts(s string) ([][2]uint16, error) {
	if s == "*" {
		return [][2]uint16{{0, 0}}, nil
	}
	var out [][2]uint16
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
		}
		if b < a {
			return nil, fmt.Errorf("bad token %q: empty port range", part)
		}
		out = append(out, [2]uint16{a, b})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || len(s) > 5 {
		return 0, fmt.Errorf("bad token %q: want a port 1..65535", s)
	}
	return uint16(n), nil
}
