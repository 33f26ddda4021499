package sim

import (
	"context"
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
	add := func(name, how string, paths, first, last, all int, expect float64) {
		s := SybilShares{Method: name, How: how, Paths: paths, Expect1: expect}
		if paths > 0 {
			s.First = float64(first) / float64(paths)
			s.Last = float64(last) / float64(paths)
			s.All = float64(all) / float64(paths)
		}
		rep.Methods = append(rep.Methods, s)
	}
	count := func(path []identity.ID, first, last, all *int) {
		if len(path) == 0 {
			return
		}
		every := true
		for _, id := range path {
			every = every && bad[id]
		}
		if bad[path[0]] {
			*first++
		}
		if bad[path[len(path)-1]] {
			*last++
		}
		if every {
			*all++
		}
	}

	// 1. Real tunnels.
	var f, l, a, n int
	c.buildTunnels(ctx, honest, cfg.Tunnels, func(hops []node.HopInfo) {
		path := make([]identity.ID, len(hops))
		for i, h := range hops {
			path[i] = h.ID
		}
		count(path, &f, &l, &a)
		n++
	})
	add("tunnels built (core, domain-uniform)", "tunnels built from random honest nodes by node.BuildTunnel", n, f, l, a, 0)

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5b))
	samples := cfg.SelectionSamples

	// 2. The core's selection, without building.
	f, l, a, n = 0, 0, 0, 0
	for range samples {
		p, err := honest[rng.IntN(len(honest))].n.SelectPath(cfg.Hops)
		if err != nil {
			continue
		}
		count(p, &f, &l, &a)
		n++
	}
	add("core selection over mimics (domain-uniform)", "node.SelectPath from random honest nodes: the real walk, no cells sent", n, f, l, a, 0)

	// 3. Node-uniform over the same mimic topology.
	table := c.globalTable(honest[0])
	addrOf := map[identity.ID]netip.Addr{}
	for _, m := range live {
		addrOf[m.n.ID()] = m.addr.Addr()
	}
	f, l, a, n = 0, 0, 0, 0
	for range samples {
		m := honest[rng.IntN(len(honest))]
		if p := nodeUniformMimicWalk(rng, table, addrOf, m.n.ID(), cfg.Hops); p != nil {
			count(p, &f, &l, &a)
			n++
		}
	}
	add("node-uniform over mimics", "same walk and /16 rule as the core, each hop uniform over the previous hop's mimics instead of their domains", n, f, l, a, 0)

	// 4 and 5: no mimic topology, uniform over the whole membership.
	byTop := map[netip.Prefix][]*member{}
	var tops []netip.Prefix
	for _, m := range live {
		t := domain.Top(m.addr.Addr())
		if byTop[t] == nil {
			tops = append(tops, t)
		}
		byTop[t] = append(byTop[t], m)
	}
	f, l, a, n = 0, 0, 0, 0
	for range samples {
		init := honest[rng.IntN(len(honest))]
		used := map[netip.Prefix]bool{domain.Top(init.addr.Addr()): true}
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
			path = append(path, pickInTop(rng, byTop[t]).n.ID())
		}
		if len(path) == cfg.Hops {
			count(path, &f, &l, &a)
			n++
		}
	}
	add("domain-uniform over the view", "each hop: a /16 uniformly among those not yet used (nor the initiator's), then a /24, then a host", n, f, l, a,
		float64(cfg.SybilDomains)/float64(len(tops)-1))

	f, l, a, n = 0, 0, 0, 0
	for range samples {
		init := honest[rng.IntN(len(honest))]
		in := map[identity.ID]bool{init.n.ID(): true}
		var path []identity.ID
		for len(path) < cfg.Hops {
			m := live[rng.IntN(len(live))]
			if in[m.n.ID()] {
				continue
			}
			in[m.n.ID()] = true
			path = append(path, m.n.ID())
		}
		count(path, &f, &l, &a)
		n++
	}
	add("node-uniform over the view", "each hop uniformly among all other nodes, no domain rule (a design without domains)", n, f, l, a,
		float64(cfg.SybilNodes)/float64(len(live)-1))
	return rep
}

// pickInTop chooses a /24 uniformly, then a host in it.
func pickInTop(rng *rand.Rand, ms []*member) *member {
	by24 := map[netip.Prefix][]*member{}
	var mids []netip.Prefix
	for _, m := range ms {
		p := domain.Of(m.addr.Addr())[domain.MiddleLevel]
		if by24[p] == nil {
			mids = append(mids, p)
		}
		by24[p] = append(by24[p], m)
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
