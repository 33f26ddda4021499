package adversary

import (
	"math"
	"slices"
	"time"
)

// Method selects how DetectOriginators scores nodes.
type Method int

const (
	// Timing scores a node by its residual frames in the flow's window:
	// outbound frames no recent inbound frame explains plus inbound frames
	// that explain no outbound one (see Residuals).
	Timing Method = iota
	// Imbalance scores a node by Σ |out − in| over windows of
	// Options.Window: traffic is conserved at relays, not at endpoints.
	Imbalance
)

// Signal selects the per-node series CorrelateFlows correlates with the
// exit's cleartext.
type Signal int

const (
	// ResidualSignal correlates Up with the node's Src residual and Down
	// with its Sink residual, so relays that merely forward the flow
	// (whose residuals are near zero) do not look like its initiator.
	ResidualSignal Signal = iota
	// RawSignal correlates Up with all outbound frames and Down with all
	// inbound frames; relays of the flow then correlate too.
	RawSignal
)

// Options tune the attacks. The zero value means the defaults below.
type Options struct {
	// Window is the correlation window (bins are summed over it before
	// the Pearson correlation) and the Imbalance window. Default 100 ms.
	Window time.Duration
	// MaxLag is the largest tunnel delay searched between a candidate's
	// frames and the exit's cleartext. It also widens the flow's window
	// for DetectOriginators. Default 500 ms.
	MaxLag time.Duration
	// Horizon is how long an inbound frame may explain outbound frames
	// (Residuals). Default 20 ms; negative means 0 (same bin only).
	Horizon time.Duration

	Method Method // DetectOriginators; default Timing
	Signal Signal // CorrelateFlows; default ResidualSignal

	// Beta is CorrelateFlows' softmax inverse temperature over
	// standardised correlation scores (default 1): p ∝ exp(Beta·z).
	Beta float64
	// Prior is DetectOriginators' least pseudo-count per node, in frames
	// (default 1; negative means 0): p ∝ excess + max(Prior, noise).
	Prior float64
	// IncludeExit keeps each flow's exit among the candidates. By
	// default it is excluded (probability 0): the adversary sees that the
	// exit emits the cleartext, and an exit never initiates its own tunnel.
	IncludeExit bool
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = 100 * time.Millisecond
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 500 * time.Millisecond
	}
	if o.Horizon == 0 {
		o.Horizon = 20 * time.Millisecond
	}
	if o.Beta == 0 {
		o.Beta = 1
	}
	if o.Prior == 0 {
		o.Prior = 1
	}
	if o.Prior < 0 {
		o.Prior = 0
	}
	return o
}

func ceilBins(d, bin time.Duration) int { return int((max(d, 0) + bin - 1) / bin) }

// DetectOriginators scores, for every flow, how much each node looks like
// a traffic source while the flow is active (its window widened by
// MaxLag on both sides), with Options.Method; subtracts the median
// candidate's score (what every node does, e.g. cover, is no evidence;
// negative excesses become 0); and turns the excesses into a distribution
// with Proportional(excess, prior), the prior being the larger of
// Options.Prior and the scores' noise level 1.4826·MAD (so excesses
// within the noise of the crowd carry little weight). The exit is
// excluded unless IncludeExit. It does not use the flows' cleartext
// series, only their windows and exits.
func DetectOriginators(tr *Trace, flows []Flow, o Options) []Distribution {
	o = o.withDefaults()
	var res *Residual
	if o.Method == Timing {
		res = Residuals(tr, o.Horizon)
	}
	lag := ceilBins(o.MaxLag, tr.bin)
	w := max(1, int(o.Window/tr.bin))
	out := make([]Distribution, len(flows))
	for i := range flows {
		f := &flows[i]
		lo, hi := f.window(tr.bin)
		if hi <= lo {
			out[i] = candidatesUniform(tr.nodes, f.Exit, o.IncludeExit)
			continue
		}
		lo, hi = max(lo-lag, 0), min(hi+lag, tr.bins)
		scores := make([]float64, tr.nodes)
		for v := range tr.nodes {
			if res != nil {
				scores[v] = float64(sum32(res.Src[v], lo, hi) + sum32(res.Sink[v], lo, hi))
			} else {
				scores[v] = imbalance(tr.out[v], tr.in[v], lo, hi, w)
			}
		}
		exclude(scores, f.Exit, o.IncludeExit)
		spread := excess(scores)
		out[i] = Proportional(scores, max(o.Prior, spread))
	}
	return out
}

// excess replaces the candidates' scores (all but Excluded) by their
// excess over the median candidate — the traffic every node produces, such
// as cover, is no evidence — and returns the scores' robust spread,
// 1.4826·MAD (the standard deviation, for normal noise).
func excess(scores []float64) float64 {
	var c []float64
	for _, v := range scores {
		if !excluded(v) {
			c = append(c, v)
		}
	}
	if len(c) == 0 {
		return 0
	}
	med := median(c)
	for i, v := range scores {
		if !excluded(v) {
			scores[i] = max(v-med, 0)
		}
	}
	for i := range c {
		c[i] = math.Abs(c[i] - med)
	}
	return 1.4826 * median(c)
}

func sum32(s []uint32, lo, hi int) uint64 {
	t := uint64(0)
	for _, x := range s[max(lo, 0):min(hi, len(s))] {
		t += uint64(x)
	}
	return t
}

func imbalance(out, in []uint32, lo, hi, w int) float64 {
	t := 0.0
	for a := lo; a < hi; a += w {
		b := min(a+w, hi)
		t += math.Abs(float64(sum32(out, a, b)) - float64(sum32(in, a, b)))
	}
	return t
}

func exclude(scores []float64, exit int, include bool) {
	if !include && exit >= 0 && exit < len(scores) {
		scores[exit] = math.Inf(-1)
	}
}

func candidatesUniform(n, exit int, include bool) Distribution {
	s := make([]float64, n)
	exclude(s, exit, include)
	return Proportional(s, 1)
}

// CorrelateFlows is the flow-correlation attack. For every flow and every
// candidate node v it sums the flow's Up series and v's signal (see
// Signal) over windows of Options.Window covering the flow's active bins,
// and computes the Pearson correlation r(ℓ) with v's signal shifted
// earlier by each lag ℓ = 0..MaxLag bins (the tunnel delay: v sends, the
// exit forwards ℓ later); Down, when present, is correlated the same way
// with v's inbound signal shifted later (the exit receives, v gets it ℓ
// later). The best lag is kept.
//
// Each correlation becomes a z-score by the Fisher transform,
// z = atanh(r)·√(K−3) over K windows (≈ N(0,1) when v is unrelated, for
// independent windows); Up and Down are combined as (z_up+z_down)/√2.
// Because real traffic is autocorrelated, the z-scores of all candidates
// are divided by max(1, 1.4826·MAD) — their robust spread — so that an
// unrelated crowd looks like N(0,1) noise. The distribution is
// Softmax(z, Beta): under that noise model, with Beta = 1, a candidate one
// standard deviation above another is e times as likely. Flows shorter
// than 4 windows, or whose cleartext is constant, give the uniform
// distribution over candidates.
func CorrelateFlows(tr *Trace, flows []Flow, o Options) []Distribution {
	o = o.withDefaults()
	var up, down [][]uint32
	if o.Signal == RawSignal {
		up, down = tr.out, tr.in
	} else {
		res := Residuals(tr, o.Horizon)
		up, down = res.Src, res.Sink
	}
	lag := ceilBins(o.MaxLag, tr.bin)
	w := max(1, int(o.Window/tr.bin))
	var c correlator
	out := make([]Distribution, len(flows))
	for i := range flows {
		f := &flows[i]
		lo, hi := f.window(tr.bin)
		k := (hi - lo) / w
		yu, okU := windowed(f.Up, lo, k, w)
		yd, okD := windowed(f.Down, lo, k, w)
		if k < 4 || (!okU && !okD) {
			out[i] = candidatesUniform(tr.nodes, f.Exit, o.IncludeExit)
			continue
		}
		z := make([]float64, tr.nodes)
		for v := range tr.nodes {
			if !o.IncludeExit && v == f.Exit {
				continue
			}
			switch {
			case okU && okD:
				z[v] = (c.best(up[v], yu, lo, w, lag, -1) + c.best(down[v], yd, lo, w, lag, +1)) / math.Sqrt2
			case okU:
				z[v] = c.best(up[v], yu, lo, w, lag, -1)
			default:
				z[v] = c.best(down[v], yd, lo, w, lag, +1)
			}
		}
		exclude(z, f.Exit, o.IncludeExit)
		standardise(z)
		out[i] = Softmax(z, o.Beta)
	}
	return out
}

// windowed returns the k window sums of s from bin lo, centred (mean 0),
// and whether they vary.
func windowed(s []float64, lo, k, w int) ([]float64, bool) {
	y := make([]float64, k)
	for j := range y {
		for b := lo + j*w; b < lo+(j+1)*w && b < len(s); b++ {
			if b >= 0 {
				y[j] += s[b]
			}
		}
	}
	mean := 0.0
	for _, v := range y {
		mean += v
	}
	mean /= float64(max(k, 1))
	varies := false
	for j := range y {
		y[j] -= mean
		varies = varies || math.Abs(y[j]) > 1e-9*math.Max(1, math.Abs(mean))
	}
	return y, varies
}

// correlator holds scratch space.
type correlator struct{ prefix []float64 }

// best returns the largest Fisher z over lags 0..lag between the centred
// window sums y (k windows of w bins from bin lo) and x's window sums
// shifted by dir·ℓ bins.
func (c *correlator) best(x []uint32, y []float64, lo, w, lag, dir int) float64 {
	k := len(y)
	base := lo - lag
	n := k*w + 2*lag
	if cap(c.prefix) < n+1 {
		c.prefix = make([]float64, n+1)
	}
	p := c.prefix[:n+1]
	p[0] = 0
	for i := range n {
		v := 0.0
		if b := base + i; b >= 0 && b < len(x) {
			v = float64(x[b])
		}
		p[i+1] = p[i] + v
	}
	if p[n] == 0 {
		return 0
	}
	syy := 0.0
	for _, v := range y {
		syy += v * v
	}
	bestR := math.Inf(-1)
	for l := 0; l <= lag; l++ {
		off := lo + dir*l - base // index in p of window 0's first bin
		var sx, sxx, sxy float64
		for j, yj := range y {
			a := off + j*w
			v := p[a+w] - p[a]
			sx += v
			sxx += v * v
			sxy += v * yj // y is centred: Σ(x−x̄)(y−ȳ) = Σ x(y−ȳ)
		}
		vx := sxx - sx*sx/float64(k)
		r := 0.0
		if vx > 1e-12*math.Max(1, sxx) && syy > 0 {
			r = sxy / math.Sqrt(vx*syy)
		}
		bestR = max(bestR, r)
	}
	r := min(max(bestR, -0.999999), 0.999999)
	return math.Atanh(r) * math.Sqrt(float64(k-3))
}

// standardise divides the candidates' scores (all but Excluded) by
// max(1, 1.4826·MAD).
func standardise(z []float64) {
	var c []float64
	for _, v := range z {
		if !excluded(v) {
			c = append(c, v)
		}
	}
	if len(c) == 0 {
		return
	}
	med := median(c)
	for i := range c {
		c[i] = math.Abs(c[i] - med)
	}
	scale := max(1, 1.4826*median(c))
	for i, v := range z {
		if !excluded(v) {
			z[i] = v / scale
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if k := len(s); k%2 == 0 {
		return (s[k/2-1] + s[k/2]) / 2
	}
	return s[len(s)/2]
}

// Pearson returns the Pearson correlation of x and y over their common
// length, 0 when either is constant.
func Pearson(x, y []float64) float64 {
	n := min(len(x), len(y))
	if n == 0 {
		return 0
	}
	var mx, my float64
	for i := range n {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxy, sxx, syy float64
	for i := range n {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}
