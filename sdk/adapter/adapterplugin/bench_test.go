package adapterplugin_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
)

// sink is the child's adapter in mode "sink": it counts the packets
// written to it and, when a packet arrives on flow endOfRun, sends back
// the count, so a benchmark measures the host-to-child path alone.
type sink struct {
	*adaptertest.Fake
	n uint64 // WritePackets runs on the one fromHost goroutine
}

const endOfRun = ^uint64(0)

func (s *sink) WritePackets(pkts []adapter.Packet) (int, error) {
	for _, p := range pkts {
		if p.Flow == endOfRun {
			s.Inject(adapter.Packet{Buf: binary.BigEndian.AppendUint64(nil, s.n), N: 8})
			s.n = 0
			continue
		}
		s.n++
	}
	return len(pkts), nil
}

// BenchmarkWrite pushes InnerMTU-byte packets into a child, in
// WritePackets calls of batch packets, and reports packets/s once the
// child has counted them all. The core wrote batches of one before; this
// is what a batch is worth across the plugin boundary (D30). -count
// repeats each sub-benchmark in a row; for A,B,A,B build the binary with
// go test -c and run the sub-benchmarks in turn (D30 has the commands).
//
// "writer" is the core's way since D30: one packet per call of
// adapter.Writer.Write (as DATA cells arrive), batched by the Writer.
func BenchmarkWrite(b *testing.B) {
	for _, batch := range []int{1, 8, adapter.BatchSize} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchWrite(b, batch, false) })
	}
	b.Run("writer", func(b *testing.B) { benchWrite(b, 1, true) })
}

func benchWrite(b *testing.B, batch int, useWriter bool) {
	a, err := adapterplugin.Launch(plugintest.Launcher(b, "sink"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if err := a.Open(adapter.Config{MTU: adapter.InnerMTU}); err != nil {
		b.Fatal(err)
	}
	out := make([]adapter.Packet, batch)
	for i := range out {
		out[i] = adapter.Packet{Buf: make([]byte, adapter.InnerMTU), N: adapter.InnerMTU, Flow: uint64(i)}
	}
	end := []adapter.Packet{{Buf: []byte{0}, N: 1, Flow: endOfRun}}
	in := []adapter.Packet{{Buf: make([]byte, 64)}}
	b.SetBytes(adapter.InnerMTU)
	b.ResetTimer()
	if useWriter {
		w := adapter.NewWriter(a, 0, func(_ int, err error) { b.Error(err) })
		done, stopped := make(chan struct{}), make(chan struct{})
		go func() { w.Run(done); close(stopped) }()
		for sent := 0; sent < b.N; {
			if w.Write(0, out[0].Buf) {
				sent++
			} else {
				runtime.Gosched() // queue full: let Run drain it
			}
		}
		for !w.Write(endOfRun, end[0].Buf) {
			runtime.Gosched()
		}
		defer func() { close(done); <-stopped }()
	} else {
		for sent := 0; sent < b.N; {
			k := min(batch, b.N-sent)
			if _, err := a.WritePackets(out[:k]); err != nil {
				b.Fatal(err)
			}
			sent += k
		}
		if _, err := a.WritePackets(end); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := a.ReadPackets(in); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := binary.BigEndian.Uint64(in[0].Buf); got != uint64(b.N) {
		b.Fatalf("the child counted %d of %d packets", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
