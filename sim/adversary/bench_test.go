package adversary

import (
	"sync"
	"testing"
	"time"
)

// The scale the package is meant for: 200 nodes, 20 concurrent flows, 3
// minutes of traffic at 10 ms bins (18 000 bins) with Poisson cover.
var (
	bigOnce sync.Once
	big     synthResult
)

func bigTrace(b *testing.B) synthResult {
	bigOnce.Do(func() {
		big = synthesize(synthConfig{n: 200, seed: 7, flows: 20, flowLen: 17500, overlap: true, cover: poissonCover, rate: 0.05})
	})
	b.ReportMetric(float64(big.trace.Frames()), "frames")
	return big
}

func BenchmarkResiduals(b *testing.B) {
	r := bigTrace(b)
	b.ResetTimer()
	for b.Loop() {
		Residuals(r.trace, 20*synthBin)
	}
}

func BenchmarkDetectOriginators(b *testing.B) {
	r := bigTrace(b)
	b.ResetTimer()
	for b.Loop() {
		DetectOriginators(r.trace, r.flows, Options{})
	}
}

func BenchmarkCorrelateFlows(b *testing.B) {
	r := bigTrace(b)
	b.ResetTimer()
	for b.Loop() {
		CorrelateFlows(r.trace, r.flows, Options{})
	}
}

func BenchmarkBuilderAdd(b *testing.B) {
	bl := NewBuilder(200, synthBin)
	i := 0
	for b.Loop() {
		bl.Add(i%200, (i+1)%200, synthBin*time.Duration(i/1000), synthBin*time.Duration(i/1000+2), 1408)
		i++
	}
}
