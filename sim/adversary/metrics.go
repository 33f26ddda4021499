package adversary

import (
	"math"
	"slices"
	"time"
)

// Summary scores one attack over a set of flows. Every field is an
// average over flows except MedianRank.
type Summary struct {
	Flows int

	Top1, Top10 float64 // fraction of flows whose initiator is ranked first / in the first 10 (ties count fractionally)
	MeanRank    float64 // expected rank of the true initiator (1 = first)
	MedianRank  float64
	TrueProb    float64 // probability given to the true initiator

	Entropy       float64 // H in bits
	EffectiveSize float64 // mean of 2^H per flow (Serjantov & Danezis)
	Degree        float64 // H / log2 N (Díaz et al.)
}

// Evaluate scores the distributions an attack produced against the true
// initiators (truth[i] for dists[i], see Truth). It panics if the lengths
// differ.
func Evaluate(dists []Distribution, truth []int) Summary {
	if len(dists) != len(truth) {
		panic("adversary: Evaluate needs one true initiator per distribution")
	}
	s := Summary{Flows: len(dists)}
	if len(dists) == 0 {
		return s
	}
	ranks := make([]float64, len(dists))
	for i, d := range dists {
		v := truth[i]
		ranks[i] = d.Rank(v)
		s.Top1 += d.TopK(v, 1)
		s.Top10 += d.TopK(v, 10)
		s.MeanRank += ranks[i]
		s.TrueProb += d[v]
		h := d.Entropy()
		s.Entropy += h
		s.EffectiveSize += math.Exp2(h)
		s.Degree += d.Degree()
	}
	n := float64(len(dists))
	s.Top1 /= n
	s.Top10 /= n
	s.MeanRank /= n
	s.TrueProb /= n
	s.Entropy /= n
	s.EffectiveSize /= n
	s.Degree /= n
	slices.Sort(ranks)
	if k := len(ranks); k%2 == 1 {
		s.MedianRank = ranks[k/2]
	} else {
		s.MedianRank = (ranks[k/2-1] + ranks[k/2]) / 2
	}
	return s
}

// Overhead returns the bandwidth overhead of a cover policy: all frames
// sent divided by the frames that carried data (1 = no cover; 3 = two
// cover frames per data frame). It is +Inf when no frame carried data
// and some were sent, NaN when none were sent.
func Overhead(frames, dataFrames uint64) float64 {
	if dataFrames == 0 {
		if frames == 0 {
			return math.NaN()
		}
		return math.Inf(1)
	}
	return float64(frames) / float64(dataFrames)
}

// Goodput returns useful bytes delivered per second over d (0 if d ≤ 0).
func Goodput(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds()
}

// Percentile returns the p-th percentile (p in [0, 100]) of durs by linear
// interpolation between the closest ranks (the "R-7" / NumPy default
// method): position p/100·(n−1) in the sorted list. durs is not modified;
// the result is 0 for an empty list.
func Percentile(durs []time.Duration, p float64) time.Duration {
	s := slices.Clone(durs)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	pos := min(max(p, 0), 100) / 100 * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(i)
	return s[i] + time.Duration(math.Round(frac*float64(s[i+1]-s[i])))
}

// Latency summarises a list of durations (e.g. per-request latencies).
type Latency struct {
	N                        int
	Mean, P50, P90, P99, Max time.Duration
}

// Latencies summarises durs (not modified).
func Latencies(durs []time.Duration) Latency {
	s := slices.Clone(durs)
	slices.Sort(s)
	l := Latency{N: len(s)}
	if len(s) == 0 {
		return l
	}
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	l.Mean = time.Duration(math.Round(sum / float64(len(s))))
	l.P50, l.P90, l.P99 = percentileSorted(s, 50), percentileSorted(s, 90), percentileSorted(s, 99)
	l.Max = s[len(s)-1]
	return l
}
