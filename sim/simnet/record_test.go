package simnet

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// collector is a concurrency-safe recorder.
type collector struct {
	mu  sync.Mutex
	obs []Observation
}

func (c *collector) record(o Observation) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

func (c *collector) all() []Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Observation(nil), c.obs...)
}

func TestRecorderSeesEveryDatagram(t *testing.T) {
	const lat = 15 * time.Millisecond
	n := New(Config{Seed: 3, Latency: lat, MTU: 1000})
	var c collector
	n.SetRecorder(c.record)
	a, b, bAddr := pair(t, n)
	aAddr := a.Addr()

	before := time.Now()
	send(t, a, bAddr, 40, 700)
	send(t, b, aAddr, 25, 300)
	send(t, a, bAddr, 5, 1001) // over the MTU: never on the wire
	after := time.Now()
	if got := recvAll(t, b, 40, 2*time.Second); got != 40 {
		t.Fatalf("b got %d of 40", got)
	}
	if got := recvAll(t, a, 25, 2*time.Second); got != 25 {
		t.Fatalf("a got %d of 25", got)
	}

	count := map[[2]netip.AddrPort]int{}
	for _, o := range c.all() {
		count[[2]netip.AddrPort{o.Src, o.Dst}]++
		want := map[netip.AddrPort]int{aAddr: 700, bAddr: 300}[o.Src]
		if o.Size != want {
			t.Errorf("%s→%s: size %d, want %d", o.Src, o.Dst, o.Size, want)
		}
		if o.Sent.Before(before) || o.Sent.After(after) {
			t.Errorf("Sent %v outside the writes [%v, %v]", o.Sent, before, after)
		}
		if o.Lost() || o.Arrived.Sub(o.Sent) != lat {
			t.Errorf("Arrived − Sent = %v, want the path latency %v", o.Arrived.Sub(o.Sent), lat)
		}
	}
	if len(count) != 2 || count[[2]netip.AddrPort{aAddr, bAddr}] != 40 || count[[2]netip.AddrPort{bAddr, aAddr}] != 25 {
		t.Errorf("observations per link %v, want 40 a→b and 25 b→a", count)
	}

	// Removing the recorder stops the reports.
	n.SetRecorder(nil)
	send(t, a, bAddr, 3, 10)
	if got := len(c.all()); got != 65 {
		t.Errorf("%d observations after SetRecorder(nil), want 65", got)
	}
}

func TestRecorderLossAndUplink(t *testing.T) {
	// Losses are observed (the sender's link carried them) with no arrival.
	n := New(Config{Seed: 9, Loss: 0.3})
	var c collector
	n.SetRecorder(c.record)
	a, _, bAddr := pair(t, n)
	send(t, a, bAddr, 200, 100)
	lost := 0
	obs := c.all()
	for _, o := range obs {
		if o.Lost() {
			lost++
		}
	}
	if len(obs) != 200 || uint64(lost) != n.Stats().Dropped[DropLoss] || lost == 0 {
		t.Errorf("%d observations, %d lost; want 200 and the %d loss drops", len(obs), lost, n.Stats().Dropped[DropLoss])
	}

	// Sent is the departure from the uplink: 20 kB through 100 kB/s after a
	// 2 kB burst leave over about 180 ms; queue drops are not observed.
	n2 := New(Config{Bandwidth: 100_000, Burst: 2000, MaxQueueDelay: 150 * time.Millisecond})
	var c2 collector
	n2.SetRecorder(c2.record)
	a2, _, b2 := pair(t, n2)
	start := time.Now()
	send(t, a2, b2, 20, 1000)
	obs = c2.all()
	dropped := n2.Stats().Dropped[DropQueue]
	if uint64(len(obs))+dropped != 20 || dropped == 0 {
		t.Fatalf("%d observed + %d queue drops, want 20 with some drops", len(obs), dropped)
	}
	last := obs[len(obs)-1].Sent.Sub(start)
	if last < 100*time.Millisecond || last > 200*time.Millisecond {
		t.Errorf("last departure after %v, want about 150ms (the uplink wait)", last)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	n := New(Config{Seed: 5})
	var c collector
	n.SetRecorder(c.record)
	const senders, each = 8, 100
	dst := n.NewTransport()
	t.Cleanup(func() { dst.Close() })
	dAddr := netip.MustParseAddrPort("10.9.0.1:1")
	if _, err := dst.Listen(dAddr); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range senders {
		tr := n.NewTransport()
		t.Cleanup(func() { tr.Close() })
		if _, err := tr.Listen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 8, 0, byte(i + 1)}), 1)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]transport.Packet, 10)
			for i := range batch {
				batch[i] = transport.Packet{Addr: dAddr, Buf: make([]byte, 64), N: 64}
			}
			for range each / 10 {
				if err := tr.WriteBatch(batch); err != nil {
					t.Error(err) // not Fatal: another goroutine
					return
				}
			}
		}()
	}
	// Swap the recorder while traffic flows: every datagram goes to one of them.
	var c2 collector
	n.SetRecorder(c2.record)
	wg.Wait()
	perSrc := map[netip.AddrPort]int{}
	for _, o := range append(c.all(), c2.all()...) {
		perSrc[o.Src]++
	}
	if len(perSrc) != senders {
		t.Fatalf("%d senders observed, want %d", len(perSrc), senders)
	}
	for src, k := range perSrc {
		if k != each {
			t.Errorf("%s: %d observations, want %d", src, k, each)
		}
	}
}
