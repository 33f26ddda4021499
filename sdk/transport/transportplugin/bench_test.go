package transportplugin

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// The two benchmarks push MaxDatagram frames in full batches from one
// transport to another over loopback and report delivered frames/s; the
// out-of-process one runs the very same UDP transport in two children.
// Compare frames/s: the target is OutOfProcess ≥ 80 % of InProcess.

func BenchmarkInProcess(b *testing.B) {
	a, _ := newUDP(nil)
	c, _ := newUDP(nil)
	benchThroughput(b, a, c)
}

func BenchmarkOutOfProcess(b *testing.B) {
	benchThroughput(b, launch(b), launch(b))
}

func benchThroughput(b *testing.B, from, to transport.Transport) {
	defer from.Close()
	defer to.Close()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	if _, err := from.Listen(lo); err != nil {
		b.Fatal(err)
	}
	dst, err := to.Listen(lo)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := to.ReadBatch(pkts)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	}()
	batch := make([]transport.Packet, transport.BatchSize)
	for i := range batch {
		batch[i] = transport.Packet{Addr: dst, Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	b.SetBytes(transport.MaxDatagram)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += len(batch) {
		if err := from.WriteBatch(batch[:min(len(batch), b.N-sent)]); err != nil {
			b.Fatal(err)
		}
	}
	// Wait for stragglers: until everything arrived or nothing moved for a while.
	for last := int64(-1); got.Load() < int64(b.N) && got.Load() != last; {
		last = got.Load()
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(100*(1-float64(got.Load())/float64(b.N)), "loss%")
	from.Close()
	to.Close()
	<-done
}
