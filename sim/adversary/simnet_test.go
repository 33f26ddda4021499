package adversary

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sim/simnet"
)

// End to end with simnet's recorder: A sends to B, which relays to C.
// The trace counts every frame once at each end, and the residuals name A
// the source and C the sink while the relay B is explained.
func TestSimnetRecorder(t *testing.T) {
	const frames = 40
	net := simnet.New(simnet.Config{Seed: 1, Latency: 10 * time.Millisecond})
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:7000"),
		netip.MustParseAddrPort("10.0.0.2:7000"),
		netip.MustParseAddrPort("10.0.0.3:7000"),
	}
	x, err := NewIndex(time.Now(), addrs)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(x.Len(), 5*time.Millisecond)
	net.SetRecorder(func(o simnet.Observation) { b.Observe(x, o.Src, o.Dst, o.Sent, o.Arrived, o.Size) })

	trs := make([]*simnet.Transport, 3)
	for i := range trs {
		trs[i] = net.NewTransport()
		t.Cleanup(func() { trs[i].Close() })
		if _, err := trs[i].Listen(addrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	buf := func(n int) []transport.Packet {
		p := make([]transport.Packet, n)
		for i := range p {
			p[i].Buf = make([]byte, transport.MaxDatagram)
		}
		return p
	}
	// B relays everything it reads to C; C counts.
	relayed := make(chan int, 1)
	go func() {
		in, got := buf(transport.BatchSize), 0
		for got < frames {
			n, err := trs[1].ReadBatch(in)
			if err != nil {
				return
			}
			out := in[:n]
			for i := range out {
				out[i].Addr = addrs[2]
			}
			if trs[1].WriteBatch(out) != nil {
				return
			}
			got += n
		}
		relayed <- got
	}()
	received := make(chan int, 1)
	go func() {
		in, got := buf(transport.BatchSize), 0
		for got < frames {
			n, err := trs[2].ReadBatch(in)
			if err != nil {
				break
			}
			got += n
		}
		received <- got
	}()
	for range frames / 4 {
		p := buf(4)
		for i := range p {
			p[i].Addr, p[i].N = addrs[1], transport.MaxDatagram
		}
		if err := trs[0].WriteBatch(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case <-relayed:
	case <-time.After(5 * time.Second):
		t.Fatal("relay stalled")
	}
	select {
	case n := <-received:
		if n != frames {
			t.Fatalf("C got %d of %d", n, frames)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("C stalled")
	}

	tr := b.Trace()
	if b.Dropped() != 0 || tr.Frames() != 2*frames || tr.Bytes() != 2*frames*transport.MaxDatagram {
		t.Fatalf("trace: %d frames, %d bytes, %d dropped; want %d frames", tr.Frames(), tr.Bytes(), b.Dropped(), 2*frames)
	}
	total := func(s []uint32) uint64 { return sum32(s, 0, len(s)) }
	if total(tr.Out(0)) != frames || total(tr.In(1)) != frames || total(tr.Out(1)) != frames || total(tr.In(2)) != frames {
		t.Errorf("per-node totals wrong: out(A) %d in(B) %d out(B) %d in(C) %d",
			total(tr.Out(0)), total(tr.In(1)), total(tr.Out(1)), total(tr.In(2)))
	}
	// B forwards within the horizon of when frames reach it (generous: the
	// machine may be busy).
	r := Residuals(tr, 200*time.Millisecond)
	if total(r.Src[0]) != frames || total(r.Src[1])+total(r.Sink[1]) != 0 || total(r.Sink[2]) != frames {
		t.Errorf("residuals: A src %d, B src %d sink %d, C sink %d; want %d, 0, 0, %d",
			total(r.Src[0]), total(r.Src[1]), total(r.Sink[1]), total(r.Sink[2]), frames, frames)
	}
}
