package onion

import (
	"math"
	"slices"
)

// Kolmogorov–Smirnov tests for the position tests. Asymptotic p-values
// (Numerical Recipes' correction for finite n), good for n in the hundreds
// and more.

// ksUniform32 tests xs against the uniform distribution on [0, 2^32).
func ksUniform32(xs []uint32) (d, p float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := float64(len(s))
	for i, x := range s {
		f := float64(x) / (1 << 32)
		d = max(d, float64(i+1)/n-f, f-float64(i)/n)
	}
	return d, ksQ(ksLambda(n, d))
}

// ksTwoSample tests whether a and b come from one distribution.
func ksTwoSample(a, b []uint32) (d, p float64) {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		v := min(x[i], y[j])
		for i < len(x) && x[i] == v {
			i++
		}
		for j < len(y) && y[j] == v {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(x))-float64(j)/float64(len(y))))
	}
	n := float64(len(x)) * float64(len(y)) / float64(len(x)+len(y))
	return d, ksQ(ksLambda(n, d))
}

func ksLambda(n, d float64) float64 {
	sq := math.Sqrt(n)
	return (sq + 0.12 + 0.11/sq) * d
}

// ksQ is the Kolmogorov survival function Q(λ) = 2 Σ (−1)^(k−1) e^(−2k²λ²).
func ksQ(lambda float64) float64 {
	if lambda < 0.3 {
		return 1 // the series is 1 to within 1e-9 here and converges slowly
	}
	sum, sign := 0.0, 1.0
	for k := 1.0; k <= 100; k++ {
		term := sign * 2 * math.Exp(-2*k*k*lambda*lambda)
		sum += term
		if math.Abs(term) < 1e-12 {
			break
		}
		sign = -sign
	}
	return min(max(sum, 0), 1)
}
