package adversary

import (
	"math"
	"slices"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestDistributionMetrics(t *testing.T) {
	point := make(Distribution, 8)
	point[3] = 1
	for _, c := range []struct {
		name             string
		d                Distribution
		h, size, degree  float64
		v                int
		rank, top1, top3 float64
	}{
		// Uniform over 8: H = 3 bits, 2^H = 8, d = 1; every node ranks (8+1)/2.
		{"uniform8", Uniform(8), 3, 8, 1, 0, 4.5, 1.0 / 8, 3.0 / 8},
		// Point mass: H = 0, 2^H = 1, d = 0.
		{"point", point, 0, 1, 0, 3, 1, 1, 1},
		{"point-other", point, 0, 1, 0, 0, 1 + 1 + 3, 0, 2.0 / 7},
		// (1/2, 1/4, 1/8, 1/8): H = 1/2 + 2/4 + 3/8 + 3/8 = 1.75, d = 1.75/2.
		{"dyadic", Distribution{0.5, 0.25, 0.125, 0.125}, 1.75, math.Exp2(1.75), 0.875, 2, 3.5, 0, 0.5},
	} {
		d := c.d
		if !near(d.Entropy(), c.h) || !near(d.EffectiveSize(), c.size) || !near(d.Degree(), c.degree) {
			t.Errorf("%s: H %g, 2^H %g, d %g; want %g, %g, %g", c.name, d.Entropy(), d.EffectiveSize(), d.Degree(), c.h, c.size, c.degree)
		}
		if !near(d.Rank(c.v), c.rank) || !near(d.TopK(c.v, 1), c.top1) || !near(d.TopK(c.v, 3), c.top3) {
			t.Errorf("%s: node %d rank %g top1 %g top3 %g; want %g %g %g", c.name, c.v, d.Rank(c.v), d.TopK(c.v, 1), d.TopK(c.v, 3), c.rank, c.top1, c.top3)
		}
	}
	if got := (Distribution{0.1, 0.4, 0.1, 0.4}).Ranking(); !slices.Equal(got, []int{1, 3, 0, 2}) {
		t.Errorf("Ranking %v, want [1 3 0 2] (ties by number)", got)
	}
	if (Distribution{1}).Degree() != 0 {
		t.Errorf("degree of a one-node distribution should be 0")
	}
}

func TestEvaluate(t *testing.T) {
	point := make(Distribution, 8)
	point[1] = 1
	// Flow 0: uniform over 8, truth 0 → top-1 1/8, top-10 1, rank 4.5, H 3.
	// Flow 1: point mass on the truth → 1, 1, 1, H 0.
	s := Evaluate([]Distribution{Uniform(8), point}, []int{0, 1})
	want := Summary{
		Flows: 2, Top1: (0.125 + 1) / 2, Top10: 1, MeanRank: 2.75, MedianRank: 2.75,
		TrueProb: (0.125 + 1) / 2, Entropy: 1.5, EffectiveSize: 4.5, Degree: 0.5,
	}
	if s != want {
		t.Errorf("Evaluate = %+v\nwant       %+v", s, want)
	}
	s = Evaluate([]Distribution{point, point, Uniform(8)}, []int{1, 2, 1})
	if s.MedianRank != 4.5 || s.MeanRank != (1+5+4.5)/3 {
		t.Errorf("median rank %g, mean %g; want 4.5 and %g", s.MedianRank, s.MeanRank, (1+5+4.5)/3)
	}
	if (Evaluate(nil, nil) != Summary{}) {
		t.Errorf("empty evaluation not zero")
	}
	if got := Truth([]Flow{{Initiator: 4}, {Initiator: 2}}); !slices.Equal(got, []int{4, 2}) {
		t.Errorf("Truth = %v", got)
	}
}

func TestProportionalSoftmax(t *testing.T) {
	for _, c := range []struct {
		name string
		got  Distribution
		want Distribution
	}{
		{"proportional", Proportional([]float64{3, 1, 0, Excluded}, 0), Distribution{0.75, 0.25, 0, 0}},
		{"proportional+prior", Proportional([]float64{3, 1, -2, Excluded}, 1), Distribution{4.0 / 7, 2.0 / 7, 1.0 / 7, 0}},
		{"proportional-zero", Proportional([]float64{0, 0, Excluded, 0}, 0), Distribution{1.0 / 3, 1.0 / 3, 0, 1.0 / 3}},
		{"all-excluded", Proportional([]float64{Excluded, Excluded}, 1), Distribution{0.5, 0.5}},
		{"softmax", Softmax([]float64{0, math.Log(3)}, 1), Distribution{0.25, 0.75}},
		{"softmax-shift", Softmax([]float64{100, 100 + math.Log(3), Excluded}, 1), Distribution{0.25, 0.75, 0}},
		{"softmax-beta", Softmax([]float64{0, math.Log(3)}, 0.5), Distribution{1 / (1 + math.Sqrt(3)), math.Sqrt(3) / (1 + math.Sqrt(3))}},
		{"softmax-huge", Softmax([]float64{1000, 0}, 1), Distribution{1, math.Exp(-1000)}},
	} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s: %v", c.name, c.got)
		}
		for i := range c.want {
			if !near(c.got[i], c.want[i]) {
				t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
				break
			}
		}
	}
}

func TestPearson(t *testing.T) {
	x := []float64{1, 2, 4, 8, 3}
	y := make([]float64, len(x))
	z := make([]float64, len(x))
	for i, v := range x {
		y[i], z[i] = 2*v+1, -v
	}
	if !near(Pearson(x, y), 1) || !near(Pearson(x, z), -1) || Pearson(x, []float64{5, 5, 5, 5, 5}) != 0 {
		t.Errorf("Pearson: %g %g %g; want 1 -1 0", Pearson(x, y), Pearson(x, z), Pearson(x, []float64{5, 5, 5, 5, 5}))
	}
	// (1,2,3) vs (1,3,2): dx = (−1,0,1), dy = (−1,1,0), Σdxdy = 1, Σdx² = Σdy² = 2 → 0.5.
	if r := Pearson([]float64{1, 2, 3}, []float64{1, 3, 2}); !near(r, 0.5) {
		t.Errorf("Pearson = %g, want 0.5", r)
	}
}

func TestTrafficMetrics(t *testing.T) {
	if Overhead(300, 100) != 3 || !math.IsInf(Overhead(5, 0), 1) || !math.IsNaN(Overhead(0, 0)) {
		t.Errorf("Overhead: %g %g %g", Overhead(300, 100), Overhead(5, 0), Overhead(0, 0))
	}
	if Goodput(1_000_000, 2*time.Second) != 500_000 || Goodput(10, 0) != 0 {
		t.Errorf("Goodput = %g, want 500000", Goodput(1_000_000, 2*time.Second))
	}
	// 1..100 ms, shuffled: p50 sits halfway between 50 and 51 ms (position
	// 0.5·99 = 49.5), p99 at position 98.01: 99 ms + 0.01 ms.
	var durs []time.Duration
	for i := range 100 {
		durs = append(durs, time.Duration((i*37)%100+1)*time.Millisecond)
	}
	orig := slices.Clone(durs)
	for p, want := range map[float64]time.Duration{
		0: time.Millisecond, 50: 50500 * time.Microsecond, 99: 99010 * time.Microsecond, 100: 100 * time.Millisecond,
	} {
		if got := Percentile(durs, p); got != want {
			t.Errorf("p%g = %v, want %v", p, got, want)
		}
	}
	if !slices.Equal(durs, orig) {
		t.Errorf("Percentile sorted its input")
	}
	l := Latencies(durs)
	if (l != Latency{N: 100, Mean: 50500 * time.Microsecond, P50: 50500 * time.Microsecond, P90: 90100 * time.Microsecond,
		P99: 99010 * time.Microsecond, Max: 100 * time.Millisecond}) {
		t.Errorf("Latencies = %+v", l)
	}
	if Percentile(nil, 50) != 0 || (Latencies(nil) != Latency{}) {
		t.Errorf("empty latency list not zero")
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("one-sample p99 = %v", got)
	}
}
