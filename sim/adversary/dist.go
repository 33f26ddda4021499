package adversary

import (
	"math"
	"slices"
)

// Distribution is the adversary's belief about who originated one flow:
// Distribution[v] is the probability it gives node v. The entries sum to 1.
type Distribution []float64

// Uniform returns the uniform distribution over n nodes.
func Uniform(n int) Distribution {
	d := make(Distribution, n)
	for i := range d {
		d[i] = 1 / float64(n)
	}
	return d
}

// Excluded (−Inf) marks a score whose node gets probability 0 in
// Proportional and Softmax (for example the flow's own exit). Any −Inf
// score is treated so.
var Excluded = math.Inf(-1)

func excluded(s float64) bool { return math.IsInf(s, -1) }

// Proportional turns non-negative evidence into a distribution:
// p_v ∝ max(s_v, 0) + prior. With scores counting unexplained frames it
// reads "blame the sender of a uniformly chosen unexplained frame", the
// prior (a pseudo-count per node, e.g. 1 frame) keeping a handful of
// stray frames from looking like certainty. Nodes scored Excluded get 0;
// if every weight is 0 the result is uniform over the nodes not excluded
// (over all nodes if all are).
func Proportional(scores []float64, prior float64) Distribution {
	w := make([]float64, len(scores))
	for i, s := range scores {
		if !excluded(s) {
			w[i] = max(s, 0) + max(prior, 0)
		}
	}
	return normalise(w, scores)
}

// Softmax turns scores into p_v ∝ exp(beta·s_v). It is invariant to
// shifting the scores; beta sets how far apart scores must be before the
// adversary is confident (beta·Δs = ln of the odds ratio). Nodes scored
// Excluded get 0.
func Softmax(scores []float64, beta float64) Distribution {
	top := math.Inf(-1)
	for _, s := range scores {
		if !excluded(s) {
			top = max(top, s)
		}
	}
	w := make([]float64, len(scores))
	for i, s := range scores {
		if !excluded(s) {
			w[i] = math.Exp(beta * (s - top))
		}
	}
	return normalise(w, scores)
}

func normalise(w, scores []float64) Distribution {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		n := 0
		for i, s := range scores {
			w[i] = 0
			if !excluded(s) {
				w[i] = 1
				n++
			}
		}
		if n == 0 {
			return Uniform(len(w))
		}
		sum = float64(n)
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// Entropy returns the Shannon entropy H = −Σ p log2 p in bits.
func (d Distribution) Entropy() float64 {
	h := 0.0
	for _, p := range d {
		if p > 0 {
			h -= p * math.Log2(p)
		}
	}
	return max(h, 0)
}

// EffectiveSize returns 2^H, the size of a uniform anonymity set with the
// same entropy (Serjantov & Danezis 2002).
func (d Distribution) EffectiveSize() float64 { return math.Exp2(d.Entropy()) }

// Degree returns the degree of anonymity H / log2(N), N = len(d) (Díaz et
// al. 2002): 1 when every node is equally suspect, 0 when one node is
// certain. It is 0 for N ≤ 1.
func (d Distribution) Degree() float64 {
	if len(d) <= 1 {
		return 0
	}
	return d.Entropy() / math.Log2(float64(len(d)))
}

// Rank returns node v's expected 1-based rank when nodes are sorted by
// decreasing probability and ties are broken at random: 1 + (nodes more
// likely) + (other nodes equally likely)/2. A uniform distribution gives
// every node (N+1)/2.
func (d Distribution) Rank(v int) float64 {
	g, m := d.above(v)
	return 1 + float64(g) + float64(m-1)/2
}

// TopK returns the probability that node v is among the k first when ties
// are broken at random: 1 or 0 without ties, k/N for a uniform
// distribution.
func (d Distribution) TopK(v, k int) float64 {
	g, m := d.above(v)
	switch {
	case k <= g:
		return 0
	case k >= g+m:
		return 1
	default:
		return float64(k-g) / float64(m)
	}
}

// above counts the nodes more likely than v (g) and as likely, v included
// (m).
func (d Distribution) above(v int) (g, m int) {
	for _, p := range d {
		switch {
		case p > d[v]:
			g++
		case p == d[v]:
			m++
		}
	}
	return g, m
}

// Ranking returns the nodes by decreasing probability, ties by number:
// the adversary's candidate list.
func (d Distribution) Ranking() []int {
	idx := make([]int, len(d))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case d[a] > d[b]:
			return -1
		case d[a] < d[b]:
			return 1
		}
		return 0
	})
	return idx
}
