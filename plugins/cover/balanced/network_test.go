package balanced

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// network simulates nodes that all run the policy, in virtual time and
// without an engine: each link sends exactly its target (data first, the
// rest padding), and what a link sends one tick its peer counts as
// received the next.
type network struct {
	adj    [][]int // symmetric mimic links
	pols   []cover.Policy
	rates  [][]float64 // rates[a][k]: a's target toward adj[a][k]
	carry  [][]float64 // fractional frames not yet counted, per directed link
	demand [][]float64 // data frames per second a must send toward adj[a][k]
	in     []float64   // frames per second each node received, last tick
	out    []float64   // frames per second each node sent, last tick
	iv     float64     // seconds per tick
	now    time.Time
}

// newNetwork links nodes at random, each to at least deg others.
func newNetwork(t *testing.T, nodes, deg int, seed uint64, options map[string]string) *network {
	t.Helper()
	rnd := mrand.New(mrand.NewPCG(seed, seed))
	n := &network{adj: make([][]int, nodes), now: time.Unix(1_800_000_000, 0)}
	linked := func(a, b int) bool {
		for _, x := range n.adj[a] {
			if x == b {
				return true
			}
		}
		return false
	}
	for a := range n.adj {
		for len(n.adj[a]) < deg {
			if b := rnd.IntN(nodes); b != a && !linked(a, b) {
				n.adj[a] = append(n.adj[a], b)
				n.adj[b] = append(n.adj[b], a)
			}
		}
	}
	for a := range n.adj {
		p, err := New(options)
		if err != nil {
			t.Fatal(err)
		}
		n.pols = append(n.pols, p)
		n.rates = append(n.rates, make([]float64, len(n.adj[a])))
		n.carry = append(n.carry, make([]float64, len(n.adj[a])))
		n.demand = append(n.demand, make([]float64, len(n.adj[a])))
	}
	n.in, n.out = make([]float64, nodes), make([]float64, nodes)
	n.iv = n.pols[0].Interval().Seconds()
	return n
}

func (n *network) link(a, b int) int {
	for k, x := range n.adj[a] {
		if x == b {
			return k
		}
	}
	panic(fmt.Sprintf("no link %d-%d", a, b))
}

// flow makes data of rate frames per second follow path, hop by hop.
func (n *network) flow(path []int, rate float64) {
	for i := 0; i+1 < len(path); i++ {
		n.demand[path[i]][n.link(path[i], path[i+1])] = rate
	}
}

func (n *network) stop() {
	for a := range n.demand {
		clear(n.demand[a])
	}
}

// tick runs one policy interval on every node.
func (n *network) tick(t *testing.T) {
	t.Helper()
	n.now = n.now.Add(time.Duration(n.iv * float64(time.Second)))
	next := make([][]float64, len(n.adj))
	for a := range n.adj {
		stats := make([]cover.LinkStats, len(n.adj[a]))
		n.in[a], n.out[a] = 0, 0
		for k, b := range n.adj[a] {
			back := n.link(b, a)
			recv := n.rates[b][back]
			n.carry[b][back] += recv * n.iv
			frames := math.Floor(n.carry[b][back])
			n.carry[b][back] -= frames
			data := math.Min(math.Round(math.Min(n.demand[b][back], recv)*n.iv), frames)
			n.in[a] += recv
			n.out[a] += n.rates[a][k]
			d := n.demand[a][k]
			sent := math.Min(d, n.rates[a][k])
			stats[k] = cover.LinkStats{Peer: fmt.Sprint(b), DataRecv: uint64(data), CoverRecv: uint64(frames - data),
				DataSent: uint64(math.Round(sent * n.iv)), Queued: int(math.Round((d - sent) * n.iv))}
		}
		ts, err := n.pols[a].Tick(n.now, stats)
		if err != nil || len(ts) != len(stats) {
			t.Fatalf("node %d: Tick = %v, %v", a, ts, err)
		}
		next[a] = make([]float64, len(ts))
		for k := range ts {
			next[a][k] = ts[k].Rate
		}
	}
	n.rates = next
}

func (n *network) ratio(a int) float64 { return n.out[a] / n.in[a] }

func (n *network) maxRate() float64 {
	m := 0.0
	for _, rs := range n.rates {
		for _, r := range rs {
			m = max(m, r)
		}
	}
	return m
}

// One tunnel's flow through a network of balanced nodes: with the default
// spread every node, originator included, sends what it receives while
// the flow lasts; with even the originator does not. Either way the
// links come back to the floor once the data stops. The doc comment
// quotes these numbers.
func TestNetworkBalance(t *testing.T) {
	for _, spread := range []string{SpreadReciprocal, SpreadEven} {
		t.Run(spread, func(t *testing.T) {
			n := newNetwork(t, 30, 4, 1, map[string]string{"spread": spread})
			path := []int{0} // originator, three relays, exit
			for len(path) < 5 {
				last := path[len(path)-1]
				path = append(path, n.adj[last][len(path)%len(n.adj[last])])
			}
			for range 20 { // quiet: every link at the floor
				n.tick(t)
			}
			if m := n.maxRate(); m != DefaultMinRate {
				t.Fatalf("quiet network: a link sends %v frames/s, want the floor %v", m, DefaultMinRate)
			}
			n.flow(path, 300)
			origin, worst := 0.0, 0.0
			for i := range 200 { // 20 s
				n.tick(t)
				if i < 10 {
					continue // the first second
				}
				origin = max(origin, n.ratio(0))
				for a := range n.adj {
					worst = max(worst, math.Abs(n.ratio(a)-1))
				}
			}
			t.Logf("during the flow: worst |out/in - 1| %.3f, originator out/in up to %.2f", worst, origin)
			switch spread {
			case SpreadReciprocal:
				if worst > 0.02 {
					t.Errorf("a node's out/in strayed %.3f from 1 during the flow, want within 2 %%", worst)
				}
			case SpreadEven:
				if origin < 1.5 {
					t.Errorf("originator's out/in at most %.2f; the doc says even leaves it at 1.5 or more", origin)
				}
			}
			n.stop()
			for i := range 100 { // 10 s
				n.tick(t)
				if n.maxRate() <= DefaultMinRate*1.05 {
					t.Logf("back at the floor %d ticks after the data stopped", i+1)
					return
				}
			}
			t.Errorf("10 s after the data stopped a link still sends %.0f frames/s; want the floor %v", n.maxRate(), DefaultMinRate)
		})
	}
}
