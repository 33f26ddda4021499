package redteam

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/netip"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/core/mimic"
)

func init() {
	register(Attack{
		Name:     "mimic-grinding",
		Finding:  "an adversary grinds its node IDs until every mimic they choose is a colluder, and then holds entry and exit of about f of the paths instead of f²",
		Severity: "high",
		Run:      runMimicGrinding,
	})
}

// runMimicGrinding: 80 honest nodes and 20 adversary nodes, each alone in
// its /16 (f = 0.2). The adversary tries random IDs for each of its nodes
// (an ID is the hash of a key anyone can make; the selection reads only
// the ID) and keeps the one whose mimics, on the real mimic table of the
// view, are most often its colluders. Honest initiators then draw paths of
// three hops by the nodes' rule (mimic.Table.Walk over chosen mimics, the
// symmetric sets if 32 walks fail, as node.SelectPath). Metric: paths
// whose first and last hops are both the adversary's, against the same
// network with the adversary's IDs left as they came. Selection only: no
// cell is sent, since what is attacked is who the paths go through.
func runMimicGrinding(ctx context.Context, size Size) (Result, error) {
	budget, paths := 5_000, 20_000
	if size == Full {
		budget, paths = 200_000, 50_000
	}
	const k, epoch, hops = 6, 1, 3
	var honest, adversary []mimic.Member
	idRand := mrand.NewChaCha8([32]byte{'g', 'r', 'i', 'n', 'd'})
	for a := range 100 {
		m := mimic.Member{Addr: netip.AddrFrom4([4]byte{10, byte(a), 0, 1})}
		idRand.Read(m.ID[:])
		if a%5 == 0 {
			adversary = append(adversary, m)
		} else {
			honest = append(honest, m)
		}
	}
	bad := map[netip.Prefix]bool{}
	for _, m := range adversary {
		bad[domain.Top(m.Addr)] = true
	}
	ch := mimic.NewChooser(append(append([]mimic.Member(nil), honest...), adversary...), epoch, k)
	colluding := func(m mimic.Member) int {
		n := 0
		for _, id := range ch.Choose(m) {
			if c, _ := ch.Table().Member(id); bad[domain.Top(c.Addr)] {
				n++
			}
		}
		return n
	}
	ground := make([]mimic.Member, len(adversary))
	tries, allBad := 0, 0
	for i, a := range adversary {
		best, bestN := a, colluding(a)
		for t := 0; t < budget && bestN < k; t++ {
			if t%1024 == 0 && ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			m := mimic.Member{Addr: a.Addr}
			idRand.Read(m.ID[:])
			tries++
			if n := colluding(m); n > bestN {
				best, bestN = m, n
			}
		}
		ground[i] = best
		if bestN == k {
			allBad++
		}
	}

	share := func(adv []mimic.Member) float64 {
		tab := mimic.NewTable(append(append([]mimic.Member(nil), honest...), adv...), epoch, k)
		isBad := map[[32]byte]bool{}
		for _, m := range adv {
			isBad[m.ID] = true
		}
		rng := mrand.New(mrand.NewPCG(1, 2))
		both, drawn := 0, 0
		for range paths {
			from := honest[rng.IntN(len(honest))]
			for attempt := range 64 {
				used := map[netip.Prefix]bool{domain.Top(from.Addr): true}
				in := map[[32]byte]bool{from.ID: true}
				p, failed := tab.Walk(from.ID, hops, attempt < 32, used, in, nil, rng.IntN)
				if failed >= 0 {
					continue
				}
				drawn++
				if isBad[p[0]] && isBad[p[hops-1]] {
					both++
				}
				break
			}
		}
		return float64(both) / float64(max(drawn, 1))
	}
	passive, attacker := share(adversary), share(ground)
	f := float64(len(adversary)) / 100
	sd := math.Sqrt(passive*(1-passive)/float64(paths)) * math.Sqrt2
	return Result{
		Metric:    "paths whose entry and exit are both the adversary's, per path",
		Attacker:  attacker,
		Passive:   passive,
		Tolerance: 3 * sd,
		Detail: fmt.Sprintf("20 of 100 /16s, one node each (f² = %.2f): %d IDs tried, %d of 20 nodes choose only colluders; entry and exit %.2f f² ground, %.2f f² passive, over %d paths",
			f*f, tries, allBad, attacker/(f*f), passive/(f*f), paths),
	}, nil
}
