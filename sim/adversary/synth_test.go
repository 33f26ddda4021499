package adversary

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// A synthetic Tarzan-like network at bin granularity, for the tests: n
// nodes on a fixed mimic topology (each node linked to i±1, i±2, i±5),
// flows through 3-hop tunnels I → R1 → R2 → E, on-off request bursts
// answered by the server, and a cover policy on every mimic link.

const (
	synthBin   = 10 * time.Millisecond
	frameBytes = 1408
)

type coverPolicy int

const (
	noCover       coverPolicy = iota
	constantCover             // exactly rate frames per link per bin; data takes cover's slots
	poissonCover              // Poisson(rate) cover frames per link per bin on top of data
)

type synthConfig struct {
	n       int
	seed    uint64
	cover   coverPolicy
	rate    float64 // cover rate, frames per link per bin
	flows   int
	flowLen int  // bins each flow is active
	overlap bool // flows concurrent (start in the first 200 bins) or one after another
}

type packet struct {
	path []int
	hop  int // path[hop] holds it
	flow int
	up   bool
}

type synthResult struct {
	trace      *Trace
	flows      []Flow
	paths      [][]int
	dataFrames uint64
}

func synthesize(cfg synthConfig) synthResult {
	rng := rand.New(rand.NewPCG(cfg.seed, 42))
	n := cfg.n
	nbrs := make([][]int, n)
	for i := range n {
		for _, d := range []int{1, 2, 5} {
			nbrs[i] = append(nbrs[i], (i+d)%n, (i-d+n)%n)
		}
		slices.Sort(nbrs[i])
	}
	pick := func(from []int, not ...int) int {
		for {
			v := from[rng.IntN(len(from))]
			if !slices.Contains(not, v) {
				return v
			}
		}
	}

	// Flows: start, end and path.
	type spec struct{ start, end int }
	specs := make([]spec, cfg.flows)
	paths := make([][]int, cfg.flows)
	bins := 0
	for f := range cfg.flows {
		s := 50 + f*(cfg.flowLen+100)
		if cfg.overlap {
			s = 50 + rng.IntN(200)
		}
		specs[f] = spec{s, s + cfg.flowLen}
		bins = max(bins, s+cfg.flowLen+150)
		i := rng.IntN(n)
		r1 := pick(nbrs[i])
		r2 := pick(nbrs[r1], i)
		e := pick(nbrs[r2], i, r1)
		paths[f] = []int{i, r1, r2, e}
	}
	flows := make([]Flow, cfg.flows)
	for f := range flows {
		flows[f] = Flow{Initiator: paths[f][0], Exit: paths[f][3]}
	}

	b := NewBuilder(n, synthBin)
	ready := make([][]packet, bins+10)
	queue := make([][]packet, n*n) // per link u→v at u*n+v
	var dataFrames uint64
	at := func(bin int) time.Duration { return time.Duration(bin)*synthBin + synthBin/2 }
	reverse := func(p []int) []int { r := slices.Clone(p); slices.Reverse(r); return r }

	for t := range bins {
		// Requests: on-off bursts while a flow is active.
		for f, s := range specs {
			if t >= s.start && t < s.end && rng.Float64() < 0.04 {
				for range 3 + rng.IntN(12) {
					ready[t] = append(ready[t], packet{path: paths[f], flow: f, up: true})
				}
			}
		}
		for _, p := range ready[t] {
			k := p.path[p.hop]*n + p.path[p.hop+1]
			queue[k] = append(queue[k], p)
		}
		ready[t] = nil
		for u := range n {
			for _, v := range nbrs[u] {
				k := u*n + v
				q := queue[k]
				send := len(q)
				cover := 0
				switch cfg.cover {
				case constantCover:
					send = min(send, int(cfg.rate))
					cover = int(cfg.rate) - send
				case poissonCover:
					cover = poisson(rng, cfg.rate)
				}
				for _, p := range q[:send] {
					arr := t + 2 + rng.IntN(2)
					b.Add(u, v, at(t), at(arr), frameBytes)
					dataFrames++
					p.hop++
					if p.hop < len(p.path)-1 {
						ready[arr] = append(ready[arr], p)
						continue
					}
					if !p.up {
						continue // the initiator reads the response
					}
					// The exit forwards the request in cleartext; the server
					// sometimes answers a few bins later.
					flows[p.flow].AddUp(synthBin, at(arr), 1400)
					if rng.Float64() < 0.5 {
						r := t + 5 + rng.IntN(3)
						for range 1 + rng.IntN(3) {
							flows[p.flow].AddDown(synthBin, at(r), 1400)
							ready[r] = append(ready[r], packet{path: reverse(paths[p.flow]), flow: p.flow})
						}
					}
				}
				queue[k] = q[send:]
				late := 0 // cover frames jittered into the second bin
				for range cover {
					late += rng.IntN(2)
				}
				b.AddN(u, v, at(t), at(t+2), frameBytes, cover-late)
				b.AddN(u, v, at(t), at(t+3), frameBytes, late)
			}
		}
	}
	return synthResult{trace: b.Trace(), flows: flows, paths: paths, dataFrames: dataFrames}
}

func poisson(rng *rand.Rand, lambda float64) int {
	// Knuth's method; lambda is small here.
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
