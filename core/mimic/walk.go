package mimic

import (
	"net/netip"

	"github.com/tarzan-net/tarzan/core/domain"
)

// Walk draws one random path of hops members continuing from prev, by the
// rule every Tarzan node uses to choose tunnel hops (PROTOCOL §9 "Paths",
// DECISIONS D15): each hop among the members the previous one chose
// (directed) or among its symmetric mimic set, uniformly over their
// top-level domains and then uniformly within the domain, never in a
// domain already in used nor a member already in in; eligible (nil: all)
// filters the candidates for position pos (0 = the first hop added).
// Walk records each hop's domain and ID in used and in. It returns the
// hops and the position where no candidate was left, or -1 on success.
//
// Nodes, the simulator's Sybil analysis and the traffic model all call
// this, so they cannot drift apart.
func (t *Table) Walk(prev [32]byte, hops int, directed bool, used map[netip.Prefix]bool, in map[[32]byte]bool,
	eligible func(id [32]byte, pos int) bool, intn func(int) int) (path [][32]byte, failedAt int) {
	for pos := 0; pos < hops; pos++ {
		j, ok := t.index[prev]
		if !ok {
			return path, pos
		}
		next := t.mimics[j]
		if directed {
			next = t.chosen[j]
		}
		var tops []netip.Prefix
		byTop := map[netip.Prefix][]int32{}
		for _, c := range next {
			m := t.members[c]
			if in[m.ID] {
				continue
			}
			top := domain.Top(m.Addr)
			if used[top] || (eligible != nil && !eligible(m.ID, pos)) {
				continue
			}
			if byTop[top] == nil {
				tops = append(tops, top)
			}
			byTop[top] = append(byTop[top], c)
		}
		if len(tops) == 0 {
			return path, pos
		}
		top := tops[intn(len(tops))]
		cands := byTop[top]
		hop := t.members[cands[intn(len(cands))]].ID
		used[top], in[hop] = true, true
		path = append(path, hop)
		prev = hop
	}
	return path, -1
}
