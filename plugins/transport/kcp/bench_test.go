package kcp

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// BenchmarkKCPFrames sends full-size link frames over loopback in
// WriteBatch calls of 64, one op per call, and reports the frames the
// receiver got per second. As in the udp transport's benchmark the sender
// keeps at most window frames in flight, so the figure is a sustainable
// rate; frames that never arrive are counted as loss. The session is
// opened before the timer starts. Default options (FEC 10+3).
func BenchmarkKCPFrames(b *testing.B) {
	const window = 1024
	rx, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	rxAddr, err := rx.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		b.Fatal(err)
	}
	tx, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	if _, err := tx.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		b.Fatal(err)
	}

	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := make([]transport.Packet, transport.BatchSize)
		for i := range in {
			in[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := rx.ReadBatch(in)
			if err != nil {
				return
			}
			received.Add(int64(n))
		}
	}()

	out := make([]transport.Packet, transport.BatchSize)
	for i := range out {
		out[i] = transport.Packet{Addr: rxAddr, Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	// Bring the session up.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() == 0 && time.Now().Before(deadline) {
		if err := tx.WriteBatch(out[:1]); err != nil {
			b.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if received.Load() == 0 {
		b.Fatal("no session within 5s")
	}
	time.Sleep(20 * time.Millisecond)
	received.Store(0)

	var sent, lost int64
	waitFor := func(limit int64) {
		last, since := received.Load(), time.Now()
		for sent-lost-received.Load() > limit {
			if r := received.Load(); r != last {
				last, since = r, time.Now()
			} else if time.Since(since) > 50*time.Millisecond {
				lost = sent - r
				return
			}
			time.Sleep(20 * time.Microsecond)
		}
	}

	b.SetBytes(int64(len(out) * transport.MaxDatagram))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		waitFor(window - int64(len(out)))
		if err := tx.WriteBatch(out); err != nil {
			b.Fatal(err)
		}
		sent += int64(len(out))
	}
	waitFor(0)
	elapsed := time.Since(start)
	b.StopTimer()
	rx.Close()
	<-done

	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(100*float64(sent-received.Load())/float64(sent), "%loss")
}
