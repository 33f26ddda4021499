package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/mimic"
	"github.com/tarzan-net/tarzan/core/node"
)

// sybilAnalysis measures how often the adversary holds the first, the
// last and every hop of a path, five ways: real tunnels built by the core,
// then selection-only draws over the same network (no cells sent): the
// core's own path selection, node-uniform choice over the same mimic
// topology, and domain- and node-uniform choice over the whole view (a
// design without mimics).
func (c *cluster) sybilAnalysis(ctx context.Context, cfg Config) *SybilReport {
	live := c.live()
	honest := honestOf(live)
	bad := map[identity.ID]bool{}
	for _, m := range live {
		if m.sybil {
			bad[m.n.ID()] = true
		}
	}
	rep := &SybilReport{}

	// 1. Real tunnels.
	built := tally{bad: bad}
	c.buildTunnels(ctx, honest, cfg.Tunnels, func(hops []node.HopInfo) {
		path := make([]identity.ID, len(hops))
		for i, h := range hops {
			path[i] = h.ID
		}
		built.count(path)
	})
	rep.Methods = append(rep.Methods, built.shares("tunnels built (core, domain-uniform)", "tunnels built from random honest nodes by node.BuildTunnel", 0))

	pop := population{bad: bad}
	for _, m := range live {
		pop.ids = append(pop.ids, m.n.ID())
		pop.addrs = append(pop.addrs, m.addr.Addr())
		if !m.sybil {
			pop.honest = append(pop.honest, len(pop.ids)-1)
		}
	}
	byID := map[identity.ID]*member{}
	for _, m := range live {
		byID[m.n.ID()] = m
	}
	core := func(from identity.ID) []identity.ID {
		p, err := byID[from].n.SelectPath(cfg.Hops)
		if err != nil {
			return nil
		}
		return p
	}
	selectionShares(rep, pop, c.globalTable(honest[0]), cfg, core,
		"core selection over chosen mimics (domain-uniform)", "node.SelectPath from random honest nodes: the real walk, no cells sent")
	return rep
}

// tally counts, over paths drawn one way, those whose first, last or
// every hop is the adversary's.
type tally struct {
	bad                                  map[identity.ID]bool
	paths, first, last, firstLast, every int
}

func (t *tally) count(path []identity.ID) {
	if len(path) == 0 {
		return
	}
	t.paths++
	all := true
	for _, id := range path {
		all = all && t.bad[id]
	}
	if t.bad[path[0]] {
		t.first++
	}
	if t.bad[path[len(path)-1]] {
		t.last++
		if t.bad[path[0]] {
			t.firstLast++
		}
	}
	if all {
		t.every++
	}
}

func (t *tally) shares(method, how string, expect float64) SybilShares {
	s := SybilShares{Method: method, How: how, Paths: t.paths, Expect1: expect}
	if t.paths > 0 {
		s.First = float64(t.first) / float64(t.paths)
		s.Last = float64(t.last) / float64(t.paths)
		s.All = float64(t.every) / float64(t.paths)
		s.FirstLast = float64(t.firstLast) / float64(t.paths)
	}
	return s
}

// population is who is in the network, for the selection-only draws.
type population struct {
	ids    []identity.ID
	addrs  []netip.Addr
	bad    map[identity.ID]bool
	honest []int // indexes of honest members
}

// selectionShares draws paths four ways over one network without
// building tunnels: the core's walk (core), node-uniform choice over the
// same mimic topology, and domain- and node-uniform choice over the whole
// membership (a design without mimics); it appends a line per method.
func selectionShares(rep *SybilReport, pop population, table *mimic.Table, cfg Config, core func(identity.ID) []identity.ID, coreName, coreHow string) {
	add := func(t *tally, name, how string, expect float64) {
		rep.Methods = append(rep.Methods, t.shares(name, how, expect))
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5b))
	samples := cfg.SelectionSamples
	randomHonest := func() int { return pop.honest[rng.IntN(len(pop.honest))] }

	// 1. The core's selection, without building.
	t := &tally{bad: pop.bad}
	for range samples {
		if p := core(pop.ids[randomHonest()]); len(p) == cfg.Hops {
			t.count(p)
		}
	}
	add(t, coreName, coreHow, 0)

	// 2. Node-uniform over the same mimic topology.
	addrOf := map[identity.ID]netip.Addr{}
	for i, id := range pop.ids {
		addrOf[id] = pop.addrs[i]
	}
	t = &tally{bad: pop.bad}
	for range samples {
		if p := nodeUniformMimicWalk(rng, table, addrOf, pop.ids[randomHonest()], cfg.Hops); p != nil {
			t.count(p)
		}
	}
	add(t, "node-uniform over mimics", "same walk and /16 rule as the core over symmetric mimic sets, each hop uniform over the previous hop's mimics instead of their domains", 0)

	// 3 and 4: no mimic topology, uniform over the whole membership.
	byTop := map[netip.Prefix][]int{}
	var tops []netip.Prefix
	for i, ad := range pop.addrs {
		t := domain.Top(ad)
		if byTop[t] == nil {
			tops = append(tops, t)
		}
		byTop[t] = append(byTop[t], i)
	}
	t = &tally{bad: pop.bad}
	for range samples {
		init := randomHonest()
		used := map[netip.Prefix]bool{domain.Top(pop.addrs[init]): true}
		var path []identity.ID
		for len(path) < cfg.Hops {
			var free []netip.Prefix
			for _, t := range tops {
				if !used[t] {
					free = append(free, t)
				}
			}
			if len(free) == 0 {
				break
			}
			t := free[rng.IntN(len(free))]
			used[t] = true
			path = append(path, pop.ids[pickInTop(rng, pop.addrs, byTop[t])])
		}
		if len(path) == cfg.Hops {
			t.count(path)
		}
	}
	add(t, "domain-uniform over the view", "each hop: a /16 uniformly among those not yet used (nor the initiator's), then a /24, then a host",
		float64(cfg.SybilDomains)/float64(len(tops)-1))

	t = &tally{bad: pop.bad}
	for range samples {
		init := randomHonest()
		in := map[int]bool{init: true}
		var path []identity.ID
		for len(path) < cfg.Hops {
			i := rng.IntN(len(pop.ids))
			if in[i] {
				continue
			}
			in[i] = true
			path = append(path, pop.ids[i])
		}
		t.count(path)
	}
	add(t, "node-uniform over the view", "each hop uniformly among all other nodes, no domain rule (a design without domains)",
		float64(cfg.SybilNodes)/float64(len(pop.ids)-1))
}

// pickInTop chooses a /24 uniformly among members (indexes into addrs),
// then a host in it.
func pickInTop(rng *rand.Rand, addrs []netip.Addr, members []int) int {
	by24 := map[netip.Prefix][]int{}
	var mids []netip.Prefix
	for _, i := range members {
		p := domain.Of(addrs[i])[domain.MiddleLevel]
		if by24[p] == nil {
			mids = append(mids, p)
		}
		by24[p] = append(by24[p], i)
	}
	hosts := by24[mids[rng.IntN(len(mids))]]
	return hosts[rng.IntN(len(hosts))]
}

// globalTable is the mimic table of m's view: at full membership every
// node's table (the cache shares it).
func (c *cluster) globalTable(m *member) *mimic.Table {
	members := m.n.View().Members(mimic.Member{ID: m.n.ID(), Addr: m.addr.Addr()})
	epoch := mimic.Epoch(time.Now(), c.cfg.EpochLength)
	if c.tables != nil {
		return c.tables.Table(members, epoch, c.cfg.K)
	}
	return mimic.NewTable(members, epoch, c.cfg.K)
}

func nodeUniformMimicWalk(rng *rand.Rand, t *mimic.Table, addrOf map[identity.ID]netip.Addr, from identity.ID, hops int) []identity.ID {
	used := map[netip.Prefix]bool{domain.Top(addrOf[from]): true}
	in := map[identity.ID]bool{from: true}
	prev := from
	var path []identity.ID
	for len(path) < hops {
		var cands []identity.ID
		for _, x := range t.Mimics(prev) {
			id := identity.ID(x)
			if !in[id] && !used[domain.Top(addrOf[id])] {
				cands = append(cands, id)
			}
		}
		if len(cands) == 0 {
			return nil
		}
		next := cands[rng.IntN(len(cands))]
		in[next] = true
		used[domain.Top(addrOf[next])] = true
		path = append(path, next)
		prev = next
	}
	return path
}

// runSelectionOnly answers the Sybil question for networks too large to
// run as real nodes here: it makes the same identities and addresses a
// full run would, computes the one mimic table every node holds at full
// membership, and draws paths with the core's rule (mimic.Table.Walk, as
// node.SelectPath) and the comparison methods. No node runs, no tunnel is
// built, and nothing depends on gossip: it is what the nodes would choose
// once membership is full.
func runSelectionOnly(cfg Config, r *Report) error {
	c, err := newCluster(cfg)
	if err != nil {
		return err
	}
	addrs, err := c.alloc.Spread(cfg.Nodes, c.honest)
	if err != nil {
		return err
	}
	var sybil []netip.AddrPort
	if cfg.SybilNodes > 0 {
		if sybil, err = c.alloc.Spread(cfg.SybilNodes, c.sybil); err != nil {
			return err
		}
	}
	pop := population{bad: map[identity.ID]bool{}}
	var members []mimic.Member
	for i, a := range append(addrs, sybil...) {
		id, err := identity.Generate(c.newRand())
		if err != nil {
			return err
		}
		pop.ids = append(pop.ids, id.ID())
		pop.addrs = append(pop.addrs, a.Addr())
		members = append(members, mimic.Member{ID: id.ID(), Addr: a.Addr()})
		if i >= len(addrs) {
			pop.bad[id.ID()] = true
		} else {
			pop.honest = append(pop.honest, i)
		}
	}
	table := mimic.NewTable(members, mimic.Epoch(time.Now(), cfg.EpochLength), cfg.K)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xc0de))
	addrOf := map[identity.ID]netip.Addr{}
	for i, id := range pop.ids {
		addrOf[id] = pop.addrs[i]
	}
	core := func(from identity.ID) []identity.ID {
		for _, directed := range []bool{true, false} {
			for range 32 {
				used := map[netip.Prefix]bool{domain.Top(addrOf[from]): true}
				in := map[[32]byte]bool{from: true}
				hops, failed := table.Walk(from, cfg.Hops, directed, used, in, nil, rng.IntN)
				if failed < 0 {
					out := make([]identity.ID, len(hops))
					for i, h := range hops {
						out[i] = identity.ID(h)
					}
					return out
				}
			}
		}
		return nil
	}
	r.Sybil = &SybilReport{}
	selectionShares(r.Sybil, pop, table, cfg, core,
		"core rule over chosen mimics (domain-uniform)", "mimic.Table.Walk (node.SelectPath's rule) on the full-membership table, from random honest nodes")
	r.Notes = append(r.Notes, fmt.Sprintf("selection only: %d nodes' identities, addresses and full-membership mimic table (%d members), no node run and no tunnel built", len(members), table.Len()))
	if cfg.Grind > 0 && cfg.SybilNodes > 0 {
		g, err := grindAnalysis(cfg, c, members[:len(addrs)], members[len(addrs):], table.Epoch())
		r.Grind = g
		if err != nil {
			return err
		}
		r.Notes = append(r.Notes, "grinding: candidate identities are random 32-byte IDs (the selection reads only the ID, the hash of a key anyone can generate)")
	}
	return nil
}
