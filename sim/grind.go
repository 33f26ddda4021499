package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/mimic"
)

// GrindReport is what an adversary gains by choosing the identities (and
// the /16s) of its nodes for one epoch, against honest initiators drawing
// paths by several rules on the real mimic tables.
type GrindReport struct {
	// F is the adversary's share of the view's /16s: f in "about f² of
	// the paths".
	F float64 `json:"adversary_domain_share"`
	// Insiders is how many honest /16s also hold one adversary node
	// (cfg.GrindInsiders): nodes it never grinds, there to be a colluder
	// that a ground node can choose inside an honest domain.
	Insiders int           `json:"insiders,omitempty"`
	Rows     []GrindShares `json:"rows"`
}

// GrindShares is one adversary strategy against one path rule.
type GrindShares struct {
	Strategy string `json:"strategy"`
	Rule     string `json:"rule"`
	// Tries is how many identities the adversary tried, all its nodes
	// together; AllBad how many of its nodes ended with every choice in
	// its own /16s; BadChoices the share of its nodes' choices there.
	Tries      int     `json:"id_tries"`
	AllBad     int     `json:"nodes_choosing_only_colluders"`
	BadChoices float64 `json:"colluder_choice_share"`
	Paths      int     `json:"paths"`
	Failed     int     `json:"walks_failed"`
	Entry      float64 `json:"entry"`
	Exit       float64 `json:"exit"`
	EntryExit  float64 `json:"entry_and_exit"`
	Ratio      float64 `json:"entry_and_exit_over_f2"`
}

// Path rules the grinding analysis compares. "core" is the rule the
// nodes use (mimic.Table.Walk, as node.SelectPath: chosen mimics, then
// the symmetric sets if 32 walks fail); the others are alternatives
// weighed in docs/DECISIONS.md.
const (
	ruleCore      = "core: next among the mimics hop j chose"
	ruleChoosers  = "next among the members that chose hop j"
	ruleSymmetric = "every hop among the previous one's symmetric mimic set"
)

// grindAnalysis measures, on one selection-only network, what an
// adversary with one node per /16 gains by grinding identities: each of
// its nodes tries up to cfg.Grind random identities (the selection reads
// only the ID, the hash of a key anyone can generate) and keeps the one
// whose choices suit it best; with cfg.GrindPool it also picks which of
// GrindPool /16s to show. Every table is the real mimic.NewTable.
func grindAnalysis(cfg Config, c *cluster, honest, adversary []mimic.Member, epoch uint64) (*GrindReport, error) {
	g := &grinder{cfg: cfg, honest: honest, epoch: epoch,
		ids: rand.NewChaCha8(seed32(cfg.Seed, "grind-ids")),
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x9121d)),
	}
	rep := &GrindReport{F: float64(cfg.SybilDomains) / float64(cfg.Domains+cfg.SybilDomains)}
	if cfg.GrindInsiders > 0 {
		if cfg.GrindInsiders > len(c.honest) {
			return rep, fmt.Errorf("sim: %d insiders for %d honest /16s", cfg.GrindInsiders, len(c.honest))
		}
		for _, d := range c.honest[:cfg.GrindInsiders] {
			a, err := c.alloc.Addr(d)
			if err != nil {
				return rep, err
			}
			m := mimic.Member{Addr: a.Addr()}
			g.ids.Read(m.ID[:])
			g.insiders = append(g.insiders, m)
		}
		rep.Insiders = len(g.insiders)
	}
	add := func(strategy string, adv []mimic.Member, tries int) {
		table := mimic.NewTable(g.view(adv), epoch, cfg.K)
		allBad, share := g.colluderChoices(table, adv)
		for _, rule := range []string{ruleCore, ruleChoosers, ruleSymmetric} {
			t, failed := g.draw(table, adv, rule)
			row := GrindShares{Strategy: strategy, Rule: rule, Tries: tries, AllBad: allBad, BadChoices: share,
				Paths: t.paths, Failed: failed}
			if t.paths > 0 {
				row.Entry = float64(t.first) / float64(t.paths)
				row.Exit = float64(t.last) / float64(t.paths)
				row.EntryExit = float64(t.firstLast) / float64(t.paths)
				row.Ratio = row.EntryExit / (rep.F * rep.F)
			}
			rep.Rows = append(rep.Rows, row)
		}
	}

	add("passive", adversary, 0)
	most, tries := g.grindIDs(adversary, true)
	add(fmt.Sprintf("grind IDs to choose colluders (≤ %d tries a node)", cfg.Grind), most, tries)
	fewest, tries := g.grindIDs(adversary, false)
	add(fmt.Sprintf("grind IDs to choose honest nodes (≤ %d tries a node)", cfg.Grind), fewest, tries)

	if cfg.GrindPool > cfg.SybilDomains {
		if cfg.SybilNodes != cfg.SybilDomains {
			return rep, fmt.Errorf("sim: --grind-pool needs one adversary node per /16 (%d nodes in %d)", cfg.SybilNodes, cfg.SybilDomains)
		}
		pool := append([]mimic.Member(nil), adversary...)
		extra, err := c.alloc.NewDomains(cfg.GrindPool - cfg.SybilDomains)
		if err != nil {
			return rep, err
		}
		for _, d := range extra {
			a, err := c.alloc.Addr(d)
			if err != nil {
				return rep, err
			}
			var id [32]byte
			g.ids.Read(id[:])
			pool = append(pool, mimic.Member{ID: id, Addr: a.Addr()})
		}
		for _, rule := range []string{ruleCore, ruleChoosers, ruleSymmetric} {
			shown, rounds := g.pickDomains(pool, len(adversary), rule)
			shown, tries := g.grindIDs(shown, true)
			add(fmt.Sprintf("show the %d of %d /16s best against %q (%d swaps tried), then grind IDs", len(adversary), cfg.GrindPool, rule, rounds), shown, tries)
		}
	}
	return rep, nil
}

type grinder struct {
	cfg      Config
	honest   []mimic.Member
	insiders []mimic.Member // adversary nodes in honest /16s
	epoch    uint64
	ids      *rand.ChaCha8 // candidate identities
	rng      *rand.Rand    // initiators and walks
}

func seed32(seed uint64, label string) [32]byte {
	var s [32]byte
	copy(s[:], fmt.Sprintf("%x/%s", seed, label))
	return s
}

// view is every member: honest nodes, insiders and adv.
func (g *grinder) view(adv []mimic.Member) []mimic.Member {
	return append(append(append([]mimic.Member(nil), g.honest...), g.insiders...), adv...)
}

// colluders counts the choices that are the adversary's: in its /16s
// (bad) or one of its insiders.
func (g *grinder) colluders(choices [][32]byte, t *mimic.Table, bad map[netip.Prefix]bool) int {
	n := 0
	for _, id := range choices {
		if c, ok := t.Member(id); ok && (bad[domain.Top(c.Addr)] || g.isInsider(id)) {
			n++
		}
	}
	return n
}

func (g *grinder) isInsider(id [32]byte) bool {
	for _, m := range g.insiders {
		if m.ID == id {
			return true
		}
	}
	return false
}

// badIDs is every adversary node: adv and the insiders.
func (g *grinder) badIDs(adv []mimic.Member) map[[32]byte]bool {
	bad := map[[32]byte]bool{}
	for _, m := range append(append([]mimic.Member(nil), g.insiders...), adv...) {
		bad[m.ID] = true
	}
	return bad
}

func topsOf(ms []mimic.Member) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, m := range ms {
		out[domain.Top(m.Addr)] = true
	}
	return out
}

// grindIDs gives each adversary node the best of up to cfg.Grind random
// identities: the one with the most choices among colluders (most), or
// the fewest. A node stops as soon as it cannot do better. Colluders are
// recognised by /16 or as insiders (whose IDs stay), so the nodes can be
// ground one by one against the passive view.
func (g *grinder) grindIDs(adv []mimic.Member, most bool) ([]mimic.Member, int) {
	ch := mimic.NewChooser(g.view(adv), g.epoch, g.cfg.K)
	bad := topsOf(adv)
	out := make([]mimic.Member, len(adv))
	tries := 0
	for i, a := range adv {
		best, bestN := a, g.colluders(ch.Choose(a), ch.Table(), bad)
		for t := 0; t < g.cfg.Grind; t++ {
			if (most && bestN >= g.cfg.K) || (!most && bestN == 0) {
				break
			}
			m := mimic.Member{Addr: a.Addr}
			g.ids.Read(m.ID[:])
			tries++
			if n := g.colluders(ch.Choose(m), ch.Table(), bad); (most && n > bestN) || (!most && n < bestN) {
				best, bestN = m, n
			}
		}
		out[i] = best
	}
	return out, tries
}

// pickDomains is an adversary that holds an address in every /16 of pool
// and shows n of them, chosen by local search (swap one shown /16 for a
// hidden one, keep the swap unless it lowers the objective) for the
// highest entry-and-exit share under rule, computed exactly over every
// honest initiator's walks: the one input of selection left to it when
// identities do not matter. The search is bounded in time so that a run
// stays short.
func (g *grinder) pickDomains(pool []mimic.Member, n int, rule string) ([]mimic.Member, int) {
	score := func(shown []mimic.Member) float64 {
		view := g.view(shown)
		return exactEntryExit(mimic.NewTable(view, g.epoch, g.cfg.K), view, g.honest, g.badIDs(shown), g.cfg.Hops, rule)
	}
	shown := append([]mimic.Member(nil), pool[:n]...)
	hidden := append([]mimic.Member(nil), pool[n:]...)
	cur := score(shown)
	deadline := time.Now().Add(g.cfg.GrindSearch)
	rounds := 0
	for ; time.Now().Before(deadline); rounds++ {
		i, j := g.rng.IntN(len(shown)), g.rng.IntN(len(hidden))
		shown[i], hidden[j] = hidden[j], shown[i]
		if s := score(shown); s >= cur {
			cur = s
		} else {
			shown[i], hidden[j] = hidden[j], shown[i]
		}
	}
	return shown, rounds
}

// exactEntryExit is the share of paths from a uniformly random honest
// initiator, by rule, whose first and last hops are the adversary's,
// summed over every walk instead of sampled (walks that dead-end are
// left out, as the nodes retry them). The core's fallback to the
// symmetric sets after 32 failed walks is not modelled.
func exactEntryExit(t *mimic.Table, members, honest []mimic.Member, bad map[[32]byte]bool, hops int, rule string) float64 {
	top := func(id [32]byte) netip.Prefix {
		m, _ := t.Member(id)
		return domain.Top(m.Addr)
	}
	choosers := choosersOf(t, members, rule)
	next := func(prev [32]byte, pos int) [][32]byte {
		switch {
		case rule == ruleSymmetric: // mimic.Table.Walk, not directed
			return t.Mimics(prev)
		case pos > 0 && rule == ruleChoosers:
			return choosers[prev]
		}
		return t.Chosen(prev)
	}
	var ok, both float64
	path := make([][32]byte, 0, hops+1)
	var walk func(p float64)
	walk = func(p float64) {
		pos := len(path) - 1
		if pos == hops {
			ok += p
			if bad[path[1]] && bad[path[hops]] {
				both += p
			}
			return
		}
		byTop := map[netip.Prefix][][32]byte{}
		var tops []netip.Prefix
	cand:
		for _, c := range next(path[pos], pos) {
			tc := top(c)
			for _, h := range path {
				if h == c || top(h) == tc {
					continue cand
				}
			}
			if byTop[tc] == nil {
				tops = append(tops, tc)
			}
			byTop[tc] = append(byTop[tc], c)
		}
		for _, tp := range tops {
			cs := byTop[tp]
			for _, c := range cs {
				path = append(path, c)
				walk(p / float64(len(tops)) / float64(len(cs)))
				path = path[:len(path)-1]
			}
		}
	}
	for _, h := range honest {
		path = append(path[:0], h.ID)
		walk(1 / float64(len(honest)))
	}
	if ok == 0 {
		return 0
	}
	return both / ok
}

// colluderChoices is how many adversary nodes choose only colluders, and
// the share of their choices that are colluders.
func (g *grinder) colluderChoices(t *mimic.Table, adv []mimic.Member) (allBad int, share float64) {
	bad := topsOf(adv)
	var in, total int
	for _, m := range adv {
		cs := t.Chosen(m.ID)
		n := g.colluders(cs, t, bad)
		if n == len(cs) && n > 0 {
			allBad++
		}
		in += n
		total += len(cs)
	}
	if total > 0 {
		share = float64(in) / float64(total)
	}
	return allBad, share
}

// draw walks cfg.SelectionSamples paths of cfg.Hops from random honest
// initiators by rule and tallies the adversary's hops.
func (g *grinder) draw(t *mimic.Table, adv []mimic.Member, rule string) (tally, int) {
	bad := map[identity.ID]bool{}
	for id := range g.badIDs(adv) {
		bad[id] = true
	}
	choosers := choosersOf(t, g.view(adv), rule)
	tl := tally{bad: bad}
	failed := 0
	for range g.cfg.SelectionSamples {
		from := g.honest[g.rng.IntN(len(g.honest))]
		var path [][32]byte
		for attempt := 0; attempt < 64 && path == nil; attempt++ {
			used := map[netip.Prefix]bool{domain.Top(from.Addr): true}
			in := map[[32]byte]bool{from.ID: true}
			switch rule {
			case ruleCore: // node.SelectPath: 32 directed walks, then 32 symmetric
				if hops, f := t.Walk(from.ID, g.cfg.Hops, attempt < 32, used, in, nil, g.rng.IntN); f < 0 {
					path = hops
				}
			case ruleSymmetric:
				if hops, f := t.Walk(from.ID, g.cfg.Hops, false, used, in, nil, g.rng.IntN); f < 0 {
					path = hops
				}
			case ruleChoosers:
				path = g.walkChoosers(t, choosers, from, used, in)
			}
		}
		if path == nil {
			failed++
			continue
		}
		ids := make([]identity.ID, len(path))
		for i, h := range path {
			ids[i] = identity.ID(h)
		}
		tl.count(ids)
	}
	return tl, failed
}

// walkChoosers draws hop 1 among the initiator's chosen mimics (as the
// core does) and each next hop among the members that chose the previous
// one, uniformly over their /16s and then within, no /16 twice.
func (g *grinder) walkChoosers(t *mimic.Table, choosers map[[32]byte][][32]byte, from mimic.Member, used map[netip.Prefix]bool, in map[[32]byte]bool) [][32]byte {
	prev := from.ID
	var path [][32]byte
	for pos := 0; pos < g.cfg.Hops; pos++ {
		next := choosers[prev]
		if pos == 0 {
			next = t.Chosen(prev)
		}
		var tops []netip.Prefix
		byTop := map[netip.Prefix][][32]byte{}
		for _, id := range next {
			m, _ := t.Member(id)
			top := domain.Top(m.Addr)
			if in[id] || used[top] {
				continue
			}
			if byTop[top] == nil {
				tops = append(tops, top)
			}
			byTop[top] = append(byTop[top], id)
		}
		if len(tops) == 0 {
			return nil
		}
		top := tops[g.rng.IntN(len(tops))]
		hop := byTop[top][g.rng.IntN(len(byTop[top]))]
		used[top], in[hop] = true, true
		path = append(path, hop)
		prev = hop
	}
	return path
}

// choosersOf maps each member to the members that chose it, for the
// choosers rule (nil for the others).
func choosersOf(t *mimic.Table, members []mimic.Member, rule string) map[[32]byte][][32]byte {
	if rule != ruleChoosers {
		return nil
	}
	out := map[[32]byte][][32]byte{}
	for _, m := range members {
		for _, c := range t.Chosen(m.ID) {
			out[c] = append(out[c], m.ID)
		}
	}
	return out
}
