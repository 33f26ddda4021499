package udp

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// BenchmarkUDPFrames sends full-size link frames over loopback in
// WriteBatch calls of 64, one op per call, and reports the frames the
// receiver actually got per second. The sender keeps at most window
// frames in flight so that the figure is a sustainable rate, not a count
// of what the socket buffer dropped; frames that never arrive are counted
// as loss. offload (UDP_SEGMENT and UDP_GRO, where the kernel has them)
// runs beside batch=64 without offload (sendmmsg/recvmmsg of single
// datagrams) and batch=1 (one system call per frame), so that each gain
// is a ratio from one run.
func BenchmarkUDPFrames(b *testing.B) {
	for _, c := range []struct {
		name string
		opts map[string]string
	}{
		{"offload", nil},
		{"batch=64", map[string]string{"gso": "off", "gro": "off"}},
		{"batch=1", map[string]string{"batch": "1", "gso": "off", "gro": "off"}},
	} {
		b.Run(c.name, func(b *testing.B) { benchFrames(b, c.opts) })
	}
}

func benchFrames(b *testing.B, opts map[string]string) {
	const window = 1024
	rx, rxAddr := listen(b, "127.0.0.1:0", opts)
	tx, _ := listen(b, "127.0.0.1:0", opts)

	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := packets(transport.BatchSize, transport.MaxDatagram)
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
	var sent, lost int64
	// waitFor blocks until at most limit frames are unaccounted for; a
	// stall of 50 ms writes the outstanding frames off as lost.
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
