package node

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Benchmarks of a frame's trip through the engine (issue 15): one relay's
// forward and backward steps in isolation (receive batch → link open →
// onion layer → link seal → WriteBatch), the initiator's send (three
// layers sealed) and receive (three opened), and whole 3-hop tunnels in
// one process. One op is one frame (one cell); allocs/op counts every
// allocation in the process per frame, the in-memory transport's copy
// included for the whole-path ones (one per hop).
//
//	go test -run '^$' -bench 'Relay|Initiator|Tunnel(Forward|Backward)' -benchmem -count 6 ./core/node/
//
// The isolated ones replay frames captured on the way to the node under
// test through a benchTransport, and discard what it writes: the timed
// part is that node's work only.

// benchTransport wraps a node's in-memory transport. Normally it passes
// everything through (a pump goroutine reads the inner transport). It can
// capture the frames arriving from one address instead of delivering
// them, serve captured frames to the node in batches, and discard what
// the node writes.
type benchTransport struct {
	transport.Transport
	in     chan *benchBatch // batches read from the inner transport
	free   chan *benchBatch
	feed   chan [][]byte // batches to serve (nil batch: barrier)
	served chan struct{} // a barrier was reached
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	capFrom  netip.AddrPort // capture frames from here (invalid: none)
	captured [][]byte

	discard atomic.Bool
	dropped atomic.Int64 // frames discarded
	writes  atomic.Int64 // WriteBatch calls discarded
}

func newBenchTransport(inner transport.Transport) *benchTransport {
	return &benchTransport{
		Transport: inner, in: make(chan *benchBatch, 64), free: make(chan *benchBatch, 128), feed: make(chan [][]byte, 1024),
		served: make(chan struct{}, 1), closed: make(chan struct{}),
	}
}

func (t *benchTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	a, err := t.Transport.Listen(addr)
	if err == nil {
		go t.pump()
	}
	return a, err
}

// benchBatch is one read of the inner transport on its way to the node;
// batches go back to free once copied, so the pump does not allocate.
type benchBatch struct {
	pkts []transport.Packet
	k    int
}

func (t *benchTransport) pump() {
	for {
		var bb *benchBatch
		select {
		case bb = <-t.free:
		default:
			bb = &benchBatch{pkts: make([]transport.Packet, transport.BatchSize)}
		}
		for i := range bb.pkts {
			if bb.pkts[i].Buf == nil {
				bb.pkts[i].Buf = make([]byte, 1500)
			}
			bb.pkts[i].Buf = bb.pkts[i].Buf[:cap(bb.pkts[i].Buf)]
		}
		k, err := t.Transport.ReadBatch(bb.pkts)
		if err != nil {
			close(t.closed)
			return
		}
		bb.k = 0
		t.mu.Lock()
		for i := range k {
			p := bb.pkts[i]
			if t.capFrom.IsValid() && p.Addr == t.capFrom {
				t.captured = append(t.captured, bytes.Clone(p.Buf[:p.N]))
				continue
			}
			bb.pkts[bb.k], bb.pkts[i] = bb.pkts[i], bb.pkts[bb.k]
			bb.k++
		}
		t.mu.Unlock()
		if bb.k == 0 {
			t.free <- bb
			continue
		}
		select {
		case t.in <- bb:
		case <-t.closed:
			return
		}
	}
}

func (t *benchTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	for {
		select {
		case bb := <-t.in:
			for i, p := range bb.pkts[:bb.k] {
				pkts[i].Addr = p.Addr
				pkts[i].N = copy(pkts[i].Buf, p.Buf[:p.N])
			}
			k := bb.k
			t.free <- bb
			return k, nil
		case b := <-t.feed:
			if b == nil {
				t.served <- struct{}{}
				continue
			}
			from := t.capFromAddr()
			for i, x := range b {
				pkts[i].Addr = from
				pkts[i].N = copy(pkts[i].Buf, x)
			}
			return len(b), nil
		case <-t.closed:
			return 0, transport.ErrClosed
		}
	}
}

func (t *benchTransport) WriteBatch(pkts []transport.Packet) error {
	if t.discard.Load() {
		t.writes.Add(1)
		t.dropped.Add(int64(len(pkts)))
		return nil
	}
	return t.Transport.WriteBatch(pkts)
}

func (t *benchTransport) capFromAddr() netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.capFrom
}

// capture starts capturing frames from addr; take returns them.
func (t *benchTransport) capture(addr netip.AddrPort) {
	t.mu.Lock()
	t.capFrom, t.captured = addr, nil
	t.mu.Unlock()
}

func (t *benchTransport) take() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.captured
	t.captured = nil
	return c
}

func (t *benchTransport) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.captured)
}

// replay serves frames in batches of transport.BatchSize and returns when
// the node has handled them all and written what they made.
func (t *benchTransport) replay(n *Node, frames [][]byte) {
	t.discard.Store(true)
	for len(frames) > 0 {
		k := min(len(frames), transport.BatchSize)
		t.feed <- frames[:k]
		frames = frames[k:]
	}
	t.feed <- nil
	<-t.served
	waitWritten(n)
	t.discard.Store(false)
}

// waitWritten waits until n's writers have written everything queued,
// polling with sleeps so that the wait costs no CPU to speak of.
func waitWritten(n *Node) {
	for n.writing.Load() != 0 {
		time.Sleep(20 * time.Microsecond)
	}
}

// cpuMeter adds up the process's CPU time (user + system) over the timed
// parts of a benchmark: the figure that a busy machine barely moves,
// where wall time per op does.
type cpuMeter struct {
	total, start time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) resume() { m.start = processCPU() }
func (m *cpuMeter) pause()  { m.total += processCPU() - m.start }

// report adds cpu-ns/op to b's results.
func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// benchExit counts the DATA cells that reach it and keeps the last
// circuit they came on.
type benchExit struct {
	got  atomic.Int64
	mu   sync.Mutex
	circ ExitCircuit
}

func (e *benchExit) ExitData(c ExitCircuit, pkt []byte) {
	if e.got.Add(1) == 1 {
		e.mu.Lock()
		e.circ = c
		e.mu.Unlock()
	}
}
func (e *benchExit) ExitClosed(uint64) {}

// pathBench is a network of 8 nodes (k = 3), each an exit behind a
// benchTransport, and a 3-hop tunnel from node 0 whose Data events are
// counted.
type pathBench struct {
	tn    *testNet
	trs   []*benchTransport
	exits []*benchExit
	t     *Tunnel
	back  atomic.Int64 // DATA cells back at node 0
	hops  []int        // node indices of the hops
}

func newPathBench(b *testing.B) *pathBench {
	b.Helper()
	pb := &pathBench{}
	tn := startNetTB(b, 8, 3, func(i int, o *Options) {
		tr := newBenchTransport(o.Transport)
		e := &benchExit{}
		pb.trs = append(pb.trs, tr)
		pb.exits = append(pb.exits, e)
		o.Transport, o.Exit, o.ExitHandler = tr, true, e
		// Captured cells never arrive: no tunnel check may take that
		// for a black hole and repair the tunnel onto another path.
		o.TunnelQuiet, o.TunnelCheckTimeout = time.Hour, time.Hour
	})
	pb.tn = tn
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := tn.nodes[0].BuildTunnelWith(ctx, TunnelSpec{Hops: 3, Events: TunnelEvents{
		Data: func([]byte) { pb.back.Add(1) },
	}})
	if err != nil {
		b.Fatal(err)
	}
	pb.t = t
	for _, id := range t.HopIDs() {
		pb.hops = append(pb.hops, tn.index(id))
	}
	return pb
}

var benchPkt = make([]byte, 1280)

// exitCircuit is the exit's handle of the tunnel's circuit (one DATA cell
// is sent to learn it).
func (pb *pathBench) exitCircuit(b *testing.B) ExitCircuit {
	e := pb.exits[pb.hops[2]]
	if err := pb.t.SendData(benchPkt); err != nil {
		b.Fatal(err)
	}
	waitCount(b, &e.got, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.circ
}

func waitCount(b *testing.B, c *atomic.Int64, want int64) {
	deadline := time.Now().Add(20 * time.Second)
	for c.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("waited for %d, have %d", want, c.Load())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

const benchChunk = 2048

// benchIsolated times node at's handling of frames from node from:
// produce makes k cells travel from→at (captured, not delivered), then
// they are replayed to at with its writes discarded.
func (pb *pathBench) benchIsolated(b *testing.B, at, from int, produce func(k int)) {
	tr := pb.trs[at]
	n := pb.tn.nodes[at]
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPkt)))
	var cpu cpuMeter
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(benchChunk, b.N-done)
		b.StopTimer()
		tr.capture(addrOf(from))
		// On a loaded machine the in-memory network drops some: produce
		// the deficit again until k frames are in.
		deadline := time.Now().Add(30 * time.Second)
		for tr.count() < k {
			produce(k - tr.count())
			for settle := 0; settle < 50 && tr.count() < k; settle++ {
				time.Sleep(time.Millisecond)
			}
			if time.Now().After(deadline) {
				b.Fatalf("captured %d of %d frames (mem dropped %d)", tr.count(), k, pb.tn.net.Dropped())
			}
		}
		frames := tr.take()
		tr.capture(netip.AddrPort{})
		frames = frames[:k]
		runtime.GC()
		b.StartTimer()
		cpu.resume()
		tr.replay(n, frames)
		cpu.pause()
		done += k
	}
	b.StopTimer()
	cpu.report(b)
	b.ReportMetric(float64(tr.writes.Load())/float64(b.N), "writes/op")
}

// BenchmarkRelayForward: hop 1 of a 3-hop tunnel relays DATA cells from
// the initiator to hop 2.
func BenchmarkRelayForward(b *testing.B) {
	pb := newPathBench(b)
	pb.benchIsolated(b, pb.hops[0], 0, func(k int) {
		for range k {
			if err := pb.t.SendData(benchPkt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRelayBackward: hop 1 of a 3-hop tunnel relays DATA cells from
// hop 2 back to the initiator.
func BenchmarkRelayBackward(b *testing.B) {
	pb := newPathBench(b)
	ec := pb.exitCircuit(b)
	pb.benchIsolated(b, pb.hops[0], pb.hops[1], func(k int) {
		for range k {
			ec.Reply(benchPkt)
		}
	})
}

// BenchmarkInitiatorSend: the initiator seals DATA cells for the exit
// (three layers, then the link) and writes them.
func BenchmarkInitiatorSend(b *testing.B) {
	pb := newPathBench(b)
	tr := pb.trs[0]
	n := pb.tn.nodes[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPkt)))
	tr.discard.Store(true)
	runtime.GC()
	var cpu cpuMeter
	b.ResetTimer()
	cpu.resume()
	for range b.N {
		if err := pb.t.SendData(benchPkt); err != nil {
			b.Fatal(err)
		}
	}
	waitWritten(n)
	cpu.pause()
	b.StopTimer()
	tr.discard.Store(false)
	cpu.report(b)
	b.ReportMetric(float64(tr.writes.Load())/float64(b.N), "writes/op")
}

// BenchmarkInitiatorReceive: the initiator opens DATA cells from the exit
// (the link, then three layers) and hands them to the tunnel's owner.
func BenchmarkInitiatorReceive(b *testing.B) {
	pb := newPathBench(b)
	ec := pb.exitCircuit(b)
	pb.benchIsolated(b, 0, pb.hops[0], func(k int) {
		for range k {
			ec.Reply(benchPkt)
		}
	})
}

// BenchmarkTunnelForward: DATA cells from the initiator through a 3-hop
// tunnel to the exit, all nodes in this process, at most 256 in flight.
func BenchmarkTunnelForward(b *testing.B) {
	pb := newPathBench(b)
	e := pb.exits[pb.hops[2]]
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPkt)))
	runtime.GC()
	var cpu cpuMeter
	b.ResetTimer()
	cpu.resume()
	for i := range b.N {
		for int64(i)-e.got.Load() >= 256 {
			time.Sleep(20 * time.Microsecond)
		}
		if err := pb.t.SendData(benchPkt); err != nil {
			b.Fatal(err)
		}
	}
	waitCount(b, &e.got, int64(b.N))
	cpu.pause()
	b.StopTimer()
	cpu.report(b)
}

// BenchmarkTunnelBackward: DATA cells from the exit back through the
// tunnel to the initiator.
func BenchmarkTunnelBackward(b *testing.B) {
	pb := newPathBench(b)
	ec := pb.exitCircuit(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPkt)))
	runtime.GC()
	var cpu cpuMeter
	b.ResetTimer()
	cpu.resume()
	for i := range b.N {
		for int64(i)-pb.back.Load() >= 256 {
			time.Sleep(20 * time.Microsecond)
		}
		ec.Reply(benchPkt)
	}
	waitCount(b, &pb.back, int64(b.N))
	cpu.pause()
	b.StopTimer()
	cpu.report(b)
}
