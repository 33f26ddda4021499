package exitpolicy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// String returns the whole policy in the rule syntax, rules joined by "; ",
// with consecutive port ranges of one target grouped and the Default
// private block written as "private". ParseSummary(p.String()) gives back
// p's rules (the length limit aside).
func (p *Policy) String() string {
	if p == nil {
		return ""
	}
	return format(p.Rules)
}

// Summary returns a description of the policy for the descriptor, at most
// MaxSummary bytes, in the same syntax as String.
//
// The summary is conservative: whatever ParseSummary(p.Summary()) accepts,
// p accepts too. When String fits it is the summary; otherwise the policy
// is shrunk by steps that can only turn accepts into rejects:
//   - rejects that overlap no accept are dropped (they decide nothing
//     beyond the default reject);
//   - rejects move ahead of all accepts;
//   - two rejects of one family merge into their common supernet with the
//     union of their port ranges;
//   - the last accept is dropped.
//
// A policy that accepts nothing summarises as "reject *".
func (p *Policy) Summary() string {
	if s := p.String(); len(s) <= MaxSummary {
		return s
	}
	var rejects, accepts []Rule
	for _, r := range p.Rules {
		if r.Action == Accept {
			accepts = append(accepts, r)
		} else {
			rejects = append(rejects, r)
		}
	}
	// Every step removes a rule, so this ends within len(p.Rules) steps.
	for {
		rejects = relevantRejects(rejects, accepts)
		if len(accepts) == 0 {
			return "reject *"
		}
		cur := format(append(slices.Clip(rejects), accepts...))
		if len(cur) <= MaxSummary {
			return cur
		}
		dropped := accepts[:len(accepts)-1]
		best := format(append(slices.Clip(relevantRejects(rejects, dropped)), dropped...))
		if merged, ok := mergeClosest(rejects); ok {
			if s := format(append(slices.Clip(merged), accepts...)); len(s) <= len(best) {
				rejects = merged
				continue
			}
		}
		accepts = dropped
	}
}

// relevantRejects keeps the rejects that overlap at least one accept. A
// "private" block is kept whole when any of its ranges is relevant: it
// costs 14 bytes as a block, while the relevant half of it written out
// prefix by prefix costs some 200 and would then be merged into
// supernets that reject public addresses too.
func relevantRejects(rejects, accepts []Rule) []Rule {
	out := make([]Rule, 0, len(rejects))
	relevant := func(r Rule) bool {
		for _, a := range accepts {
			if overlaps(r, a) {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(rejects); i++ {
		if isPrivateBlock(rejects[i:]) {
			block := rejects[i : i+len(privateRanges)]
			if slices.ContainsFunc(block, relevant) {
				out = append(out, block...)
			}
			i += len(block) - 1
			continue
		}
		if relevant(rejects[i]) {
			out = append(out, rejects[i])
		}
	}
	return out
}

func overlaps(a, b Rule) bool {
	if a.Proto != "" && b.Proto != "" && a.Proto != b.Proto {
		return false
	}
	if a.Prefix.IsValid() && b.Prefix.IsValid() && !a.Prefix.Overlaps(b.Prefix) {
		return false
	}
	alo, ahi := a.portRange()
	blo, bhi := b.portRange()
	return alo <= bhi && blo <= ahi
}

func (r Rule) portRange() (lo, hi uint16) {
	if r.allPorts() {
		return 0, 65535
	}
	return r.PortLo, r.PortHi
}

// mergeClosest replaces the two rejects with the longest common prefix by
// one covering both. It refuses merges broader than /8 (IPv4) or /16
// (IPv6), which would throw away too much of the policy.
func mergeClosest(rejects []Rule) ([]Rule, bool) {
	// The closest pair is adjacent in address order; merging keeps the
	// other rules in place so a "private" block stays recognisable.
	// Rules inside a "private" block cost 14 bytes for all of them, so
	// they are not merge candidates.
	order := make([]int, 0, len(rejects))
	for i := 0; i < len(rejects); i++ {
		if isPrivateBlock(rejects[i:]) {
			i += len(privateRanges) - 1
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := rejects[i].Prefix, rejects[j].Prefix
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	bestK, bestBits := -1, -1
	for k := 0; k+1 < len(order); k++ {
		a, b := rejects[order[k]].Prefix, rejects[order[k+1]].Prefix
		if !a.IsValid() || !b.IsValid() || a.Addr().Is4() != b.Addr().Is4() {
			continue
		}
		bits := min(commonBits(a.Addr(), b.Addr()), a.Bits(), b.Bits())
		limit := 8
		if a.Addr().Is6() {
			limit = 16
		}
		if bits >= limit && bits > bestBits {
			bestK, bestBits = k, bits
		}
	}
	if bestK < 0 {
		return nil, false
	}
	i, j := order[bestK], order[bestK+1]
	if j < i {
		i, j = j, i
	}
	a, b := rejects[i], rejects[j]
	m := Rule{Action: Reject, Proto: a.Proto}
	if a.Proto != b.Proto {
		m.Proto = ""
	}
	m.Prefix, _ = a.Prefix.Addr().Prefix(bestBits)
	if !a.allPorts() && !b.allPorts() {
		m.PortLo, m.PortHi = min(a.PortLo, b.PortLo), max(a.PortHi, b.PortHi)
	}
	out := slices.Clone(rejects)
	out[i] = m
	return slices.Delete(out, j, j+1), true
}

func commonBits(a, b netip.Addr) int {
	x, y := a.AsSlice(), b.AsSlice()
	n := 0
	for i := range x {
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		return n
	}
	return n
}

func format(rules []Rule) string {
	var b strings.Builder
	for i := 0; i < len(rules); {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		r := rules[i]
		b.WriteString(r.Action.String())
		if r.Proto != "" {
			b.WriteByte(' ')
			b.WriteString(r.Proto)
		}
		b.WriteByte(' ')
		if isPrivateBlock(rules[i:]) {
			b.WriteString("private")
			i += len(privateRanges)
			continue
		}
		b.WriteString(formatTarget(r.Prefix, r.PortLo != 0 || r.PortHi != 0))
		if r.allPorts() {
			i++
			continue
		}
		b.WriteByte(':')
		j := i
		for ; j < len(rules); j++ {
			q := rules[j]
			if q.Action != r.Action || q.Proto != r.Proto || q.Prefix != r.Prefix || q.allPorts() {
				break
			}
			if j > i {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(q.PortLo)))
			if q.PortHi != q.PortLo {
				b.WriteByte('-')
				b.WriteString(strconv.Itoa(int(q.PortHi)))
			}
		}
		i = j
	}
	return b.String()
}

// isPrivateBlock reports whether rules starts with the expansion of
// "<action> [proto] private".
func isPrivateBlock(rules []Rule) bool {
	if len(rules) < len(privateRanges) {
		return false
	}
	first := rules[0]
	for i, pf := range privateRanges {
		r := rules[i]
		if r.Prefix != pf || !r.allPorts() || r.Action != first.Action || r.Proto != first.Proto {
			return false
		}
	}
	return true
}

func formatTarget(pf netip.Prefix, withPorts bool) string {
	if !pf.IsValid() {
		return "*"
	}
	a := pf.Addr()
	if pf.Bits() == 0 {
		if a.Is4() {
			return "*4"
		}
		return "*6"
	}
	if a.Is4() {
		if pf.Bits() == 32 {
			return a.String()
		}
		return pf.String()
	}
	s := "[" + a.String() + "]"
	if pf.Bits() != 128 {
		s += "/" + strconv.Itoa(pf.Bits())
	}
	return s
}

// String gives the rule in the policy syntax ("reject tcp 10.0.0.0/8:25").
func (r Rule) String() string { return format([]Rule{r}) }
