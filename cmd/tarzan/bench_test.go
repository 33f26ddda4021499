package main

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/transport/udp"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// Frames/s through the shipped UDP transport, in process and as the child
// process a node really runs (`tarzan plugin serve transport udp`), with the
// same sender window, so the two can be compared: the design target is
// out of process ≥ 80 % of in process.

func BenchmarkUDPTransportInProcess(b *testing.B) {
	a, err := udp.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := udp.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	benchFrames(b, a, c)
}

func BenchmarkUDPTransportOutOfProcess(b *testing.B) {
	launch := func() transport.Transport {
		t, err := transportplugin.Launch(pluginkit.Launcher{
			Path: tarzanBin, Args: []string{"plugin", "serve", "transport", "udp"}, Name: "udp",
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	benchFrames(b, launch(), launch())
}

func benchFrames(b *testing.B, from, to transport.Transport) {
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
	// A window of frames in flight keeps the sender from simply overrunning
	// the receiver's socket buffer, which would measure loss, not speed.
	const window = 2048
	b.SetBytes(transport.MaxDatagram)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		deadline := time.Now().Add(time.Second)
		for int64(sent)-got.Load() > window && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		k := min(len(batch), b.N-sent)
		if err := from.WriteBatch(batch[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	for last := int64(-1); got.Load() < int64(b.N) && got.Load() != last; {
		last = got.Load()
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(100*(1-float64(got.Load())/float64(b.N)), "loss%")
}
