package adversary

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func log2(n int) float64 { return math.Log2(float64(n)) }

// Without cover, flows one after another: both attacks name every
// initiator first.
func TestNoCoverSequential(t *testing.T) {
	r := synthesize(synthConfig{n: 32, seed: 1, flows: 10, flowLen: 300})
	truth := Truth(r.flows)
	for name, o := range map[string]Options{"timing": {}, "imbalance": {Method: Imbalance}} {
		s := Evaluate(DetectOriginators(r.trace, r.flows, o), truth)
		if s.Top1 != 1 || s.MeanRank != 1 || s.TrueProb < 0.5 {
			t.Errorf("originator detection (%s) without cover: %+v, want every initiator first", name, s)
		}
	}
	for name, o := range map[string]Options{"residual": {}, "raw": {Signal: RawSignal}} {
		s := Evaluate(CorrelateFlows(r.trace, r.flows, o), truth)
		if s.Top1 != 1 || s.Entropy > 0.1 || s.Degree > 0.05 {
			t.Errorf("flow correlation (%s) without cover: %+v, want every initiator first with near certainty", name, s)
		}
	}
}

// Without cover, 8 concurrent flows: correlation still names every
// initiator; originator detection only narrows the field to the active
// endpoints (other initiators and exits look alike).
func TestNoCoverConcurrent(t *testing.T) {
	const flows = 8
	r := synthesize(synthConfig{n: 32, seed: 1, flows: flows, flowLen: 1500, overlap: true})
	truth := Truth(r.flows)
	res := Evaluate(CorrelateFlows(r.trace, r.flows, Options{}), truth)
	if res.Top1 != 1 || res.Entropy > 0.1 {
		t.Errorf("flow correlation on residuals: %+v, want every initiator first", res)
	}
	// On raw outbound frames the flow's relays correlate too.
	raw := Evaluate(CorrelateFlows(r.trace, r.flows, Options{Signal: RawSignal}), truth)
	if raw.Top10 != 1 || raw.Top1 > res.Top1 {
		t.Errorf("flow correlation on raw frames: %+v; want initiators in the top 10, no better than residuals", raw)
	}
	for i, d := range DetectOriginators(r.trace, r.flows, Options{}) {
		if rk := d.Rank(r.flows[i].Initiator); rk > 2*flows-1 {
			t.Errorf("flow %d: initiator ranked %.1f, want among the %d active endpoints", i, rk, 2*flows-1)
		}
	}
}

// Constant-rate cover on every link (data takes the place of cover): the
// adversary does no better than chance, and its uncertainty is nearly
// log2 N.
func TestConstantCoverIsChance(t *testing.T) {
	const n = 32
	r := synthesize(synthConfig{n: n, seed: 1, flows: 12, flowLen: 250, cover: constantCover, rate: 2})
	truth := Truth(r.flows)
	attacks := map[string][]Distribution{
		"timing":       DetectOriginators(r.trace, r.flows, Options{}),
		"imbalance":    DetectOriginators(r.trace, r.flows, Options{Method: Imbalance}),
		"correlation":  CorrelateFlows(r.trace, r.flows, Options{}),
		"raw-corr":     CorrelateFlows(r.trace, r.flows, Options{Signal: RawSignal}),
		"correlation½": CorrelateFlows(r.trace, r.flows, Options{Beta: 0.5}),
	}
	for _, name := range slices.Sorted(maps.Keys(attacks)) {
		s := Evaluate(attacks[name], truth)
		t.Logf("%s %+v", name, s)
		// Chance: top-1 1/32, top-10 10/31 (exit excluded), mean rank 16.
		if s.Top1 > 0.15 || s.Top10 > 0.6 || s.MeanRank < 9 || s.MeanRank > 24 {
			t.Errorf("%s under constant cover: %+v, want chance", name, s)
		}
		if s.Entropy < 0.9*log2(n) || s.Degree < 0.9 || s.EffectiveSize < 0.8*n {
			t.Errorf("%s under constant cover: H = %.2f bits (d %.2f, 2^H %.1f), want near log2 %d = %.0f",
				name, s.Entropy, s.Degree, s.EffectiveSize, n, log2(n))
		}
	}
}

// More cover, more uncertainty: entropy grows from no cover through
// Poisson cover to constant cover, for both attacks.
func TestCoverRaisesEntropy(t *testing.T) {
	base := synthConfig{n: 32, seed: 2, flows: 8, flowLen: 300}
	var prevO, prevC float64 = -1, -1
	for _, c := range []struct {
		cover coverPolicy
		rate  float64
	}{{noCover, 0}, {poissonCover, 0.5}, {constantCover, 2}} {
		cfg := base
		cfg.cover, cfg.rate = c.cover, c.rate
		r := synthesize(cfg)
		truth := Truth(r.flows)
		o := Evaluate(DetectOriginators(r.trace, r.flows, Options{}), truth)
		k := Evaluate(CorrelateFlows(r.trace, r.flows, Options{}), truth)
		t.Logf("cover %d rate %.1f: overhead %.1f; originator %+v; correlation %+v",
			c.cover, c.rate, Overhead(r.trace.Frames(), r.dataFrames), o, k)
		if o.Entropy <= prevO || k.Entropy <= prevC {
			t.Errorf("cover %d: entropy %.2f / %.2f, not above the weaker cover's %.2f / %.2f", c.cover, o.Entropy, k.Entropy, prevO, prevC)
		}
		prevO, prevC = o.Entropy, k.Entropy
	}
}

// The exit is not a candidate unless IncludeExit.
func TestExitExcluded(t *testing.T) {
	r := synthesize(synthConfig{n: 16, seed: 3, flows: 3, flowLen: 300})
	for _, f := range []func(*Trace, []Flow, Options) []Distribution{DetectOriginators, CorrelateFlows} {
		for i, d := range f(r.trace, r.flows, Options{}) {
			if d[r.flows[i].Exit] != 0 || math.Abs(sum(d)-1) > 1e-9 {
				t.Errorf("flow %d: exit has p = %g (sum %g), want 0 (1)", i, d[r.flows[i].Exit], sum(d))
			}
		}
		for i, d := range f(r.trace, r.flows, Options{IncludeExit: true}) {
			if d[r.flows[i].Exit] == 0 {
				t.Errorf("flow %d: IncludeExit, but the exit has p = 0", i)
			}
		}
	}
}

func sum(d Distribution) float64 {
	s := 0.0
	for _, p := range d {
		s += p
	}
	return s
}

// The lag search finds a tunnel delay of 300 ms when allowed to, and the
// correlation collapses when it is not.
func TestCorrelationLag(t *testing.T) {
	const n, bins, delay = 16, 3000, 30 // delay in bins
	rng := rand.New(rand.NewPCG(5, 5))
	b := NewBuilder(n, synthBin)
	at := func(bin int) time.Duration { return time.Duration(bin) * synthBin }
	f := Flow{Initiator: 3, Exit: 4}
	// Every node sends on-off bursts to its successor; node 3's traffic
	// leaves the exit (node 4) as cleartext 300 ms later.
	for v := range n {
		for t := 0; t < bins-delay; t++ {
			if rng.Float64() < 0.05 {
				k := 1 + rng.IntN(10)
				for range k {
					b.Add(v, (v+1)%n, at(t), at(t+2), frameBytes)
				}
				if v == 3 {
					f.AddUp(synthBin, at(t+delay), k*1400)
				}
			}
		}
	}
	tr := b.Trace()
	good := CorrelateFlows(tr, []Flow{f}, Options{MaxLag: 500 * time.Millisecond})[0]
	short := CorrelateFlows(tr, []Flow{f}, Options{MaxLag: 50 * time.Millisecond})[0]
	if good[3] < 0.99 || good.Rank(3) != 1 {
		t.Errorf("MaxLag 500ms: p(initiator) = %.3f, rank %.1f; want ≈ 1, 1", good[3], good.Rank(3))
	}
	if short[3] > 0.5 {
		t.Errorf("MaxLag 50ms < the 300ms delay: p(initiator) = %.3f, want the correlation lost", short[3])
	}
}

// Same input, same output; and the trace does not depend on the order
// observations arrive in.
func TestDeterministic(t *testing.T) {
	cfg := synthConfig{n: 24, seed: 9, flows: 5, flowLen: 400, overlap: true, cover: poissonCover, rate: 0.3}
	r1, r2 := synthesize(cfg), synthesize(cfg)
	for _, o := range []Options{{}, {Method: Imbalance}, {Signal: RawSignal}} {
		a, b := DetectOriginators(r1.trace, r1.flows, o), DetectOriginators(r2.trace, r2.flows, o)
		c, d := CorrelateFlows(r1.trace, r1.flows, o), CorrelateFlows(r1.trace, r1.flows, o)
		for i := range a {
			if !slices.Equal(a[i], b[i]) || !slices.Equal(c[i], d[i]) {
				t.Fatalf("options %+v, flow %d: results differ between identical runs", o, i)
			}
		}
	}
}

// Residuals on hand-built traffic: a relay's forwarded frames are
// explained, an endpoint's are not, a frame echoed back on the link it came
// from is not, and neither is one forwarded after the horizon.
func TestResiduals(t *testing.T) {
	at := func(bin int) time.Duration { return time.Duration(bin)*synthBin + time.Millisecond }
	// 0 → 1 → 2: five frames leave 0 in bin 10, reach 1 in bin 12, which
	// forwards them at once; they reach 2 in bin 14.
	// 1 also echoes 3 frames back to 0 in bin 12, and forwards 2 frames
	// that arrived in bin 20 only in bin 23.
	b := NewBuilder(3, synthBin)
	for range 5 {
		b.Add(0, 1, at(10), at(12), frameBytes)
		b.Add(1, 2, at(12), at(14), frameBytes)
	}
	for range 3 {
		b.Add(1, 0, at(12), at(13), frameBytes)
	}
	for range 2 {
		b.Add(0, 1, at(18), at(20), frameBytes)
		b.Add(1, 2, at(23), at(25), frameBytes)
	}
	tr := b.Trace()

	r := Residuals(tr, 2*synthBin)
	want := map[string][3]int{ // total Src, total Sink per node
		"src":  {5 + 2, 3 + 2, 0},
		"sink": {3, 2, 5 + 2},
	}
	for v := range 3 {
		src, sink := sum32(r.Src[v], 0, tr.Bins()), sum32(r.Sink[v], 0, tr.Bins())
		if int(src) != want["src"][v] || int(sink) != want["sink"][v] {
			t.Errorf("horizon 20ms, node %d: Src %d Sink %d, want %d %d", v, src, sink, want["src"][v], want["sink"][v])
		}
	}
	if r.Src[1][12] != 3 || r.Src[1][23] != 2 || r.Sink[1][20] != 2 || r.Src[0][10] != 5 || r.Sink[2][14] != 5 {
		t.Errorf("residuals in the wrong bins: node 1 Src[12]=%d Src[23]=%d Sink[20]=%d", r.Src[1][12], r.Src[1][23], r.Sink[1][20])
	}
	// A 30 ms horizon explains the late forward.
	r = Residuals(tr, 3*synthBin)
	if src, sink := sum32(r.Src[1], 0, tr.Bins()), sum32(r.Sink[1], 0, tr.Bins()); src != 3 || sink != 0 {
		t.Errorf("horizon 30ms, relay: Src %d Sink %d, want 3 (the echo) and 0", src, sink)
	}
}

// Flows without activity, or too short to correlate, give the uniform
// distribution over candidates.
func TestDegenerateFlows(t *testing.T) {
	b := NewBuilder(4, synthBin)
	b.Add(0, 1, 0, synthBin, frameBytes)
	tr := b.Trace()
	short := Flow{Initiator: 0, Exit: 1}
	short.AddUp(synthBin, 0, 100)
	for _, d := range [][]Distribution{
		DetectOriginators(tr, []Flow{{Exit: 1}}, Options{}),
		CorrelateFlows(tr, []Flow{{Exit: 1}, short}, Options{}),
	} {
		for _, x := range d {
			if !slices.Equal(x, Distribution{1.0 / 3, 0, 1.0 / 3, 1.0 / 3}) {
				t.Errorf("got %v, want uniform over the three non-exits", x)
			}
		}
	}
}

func TestFlowWindow(t *testing.T) {
	var f Flow
	f.AddUp(synthBin, 55*time.Millisecond, 10)
	f.AddDown(synthBin, 92*time.Millisecond, 10)
	f.AddUp(synthBin, -time.Millisecond, 10) // ignored
	if lo, hi := f.window(synthBin); lo != 5 || hi != 10 {
		t.Errorf("derived window [%d, %d), want [5, 10)", lo, hi)
	}
	if len(f.Up) != 6 || f.Up[5] != 10 || len(f.Down) != 10 {
		t.Errorf("Up %v Down %v", f.Up, f.Down)
	}
	f.Start, f.End = 20*time.Millisecond, 200*time.Millisecond
	if lo, hi := f.window(synthBin); lo != 2 || hi != 21 {
		t.Errorf("explicit window [%d, %d), want [2, 21)", lo, hi)
	}
}
