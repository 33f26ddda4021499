package node

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Benchmarks run on the in-memory network, so they measure the node's own
// processing (crypto, dispatch, queues), not the kernel. cmd/tarzan has the
// same measurements over real UDP sockets.

func benchNet(b *testing.B) *testNet {
	b.Helper()
	return startNetB(b, 8, 3)
}

// BenchmarkTunnelSetup3Hops builds and tears down 3-hop tunnels; the
// reported median is what DESIGN.md §4 compares against (≤ 5 ms).
func BenchmarkTunnelSetup3Hops(b *testing.B) {
	tn := benchNet(b)
	src := tn.nodes[0]
	ctx := context.Background()
	var setups []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			b.Fatal(err)
		}
		setups = append(setups, t.SetupTime())
		t.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(medianDur(setups).Microseconds())/1000, "median-ms")
}

// BenchmarkPerHopLatency pings hop 1 and hop 3 of one tunnel alternately;
// (rtt3 − rtt1) / 2 is the round-trip cost each extra hop adds, halved
// again for the one-way added latency per hop (target ≤ 50 µs).
func BenchmarkPerHopLatency(b *testing.B) {
	tn := benchNet(b)
	ctx := context.Background()
	t, err := tn.nodes[0].BuildTunnel(ctx, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	var r1, r3 []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d1, err := t.Ping(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		d3, err := t.Ping(ctx, 2)
		if err != nil {
			b.Fatal(err)
		}
		r1, r3 = append(r1, d1), append(r3, d3)
	}
	b.StopTimer()
	m1, m3 := medianDur(r1), medianDur(r3)
	b.ReportMetric(float64(m1.Microseconds()), "rtt-hop1-µs")
	b.ReportMetric(float64(m3.Microseconds()), "rtt-hop3-µs")
	b.ReportMetric(float64((m3-m1).Microseconds())/4, "oneway-per-hop-µs")
}

func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
