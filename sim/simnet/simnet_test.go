package simnet

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func TestConformance(t *testing.T) {
	n := New(Config{})
	next := 0
	transporttest.Run(t, func(*testing.T) transport.Transport { next++; return &anyPort{n.NewTransport(), next} })
}

// anyPort lets the conformance suite listen on port 0 (the suite's
// convention) by choosing a port of its own.
type anyPort struct {
	*Transport
	i int
}

func (a *anyPort) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	if addr.Port() == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), uint16(30000+a.i))
	}
	if !addr.Addr().IsUnspecified() {
		return a.Transport.Listen(addr)
	}
	// simnet has no wildcard: bind the loopback address the suite
	// advertises for one, and report the wildcard as bound.
	lo := netip.IPv6Loopback()
	if addr.Addr().Is4() {
		lo = netip.MustParseAddr("127.0.0.1")
	}
	if _, err := a.Transport.Listen(netip.AddrPortFrom(lo, addr.Port())); err != nil {
		return netip.AddrPort{}, err
	}
	return addr, nil
}

func pair(t *testing.T, n *Network) (*Transport, *Transport, netip.AddrPort) {
	a, b := n.NewTransport(), n.NewTransport()
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := a.Listen(netip.MustParseAddrPort("10.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	bAddr := netip.MustParseAddrPort("10.1.0.1:1")
	if _, err := b.Listen(bAddr); err != nil {
		t.Fatal(err)
	}
	return a, b, bAddr
}

func send(t *testing.T, tr *Transport, to netip.AddrPort, count, size int) {
	batch := make([]transport.Packet, count)
	for i := range batch {
		batch[i] = transport.Packet{Addr: to, Buf: make([]byte, size), N: size}
		batch[i].Buf[0] = byte(i)
	}
	if err := tr.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
}

func recvAll(t *testing.T, tr *Transport, want int, limit time.Duration) int {
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]transport.Packet, 64)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 2000)
		}
		for got < want {
			n, err := tr.ReadBatch(pkts)
			if err != nil {
				return
			}
			got += n
		}
	}()
	select {
	case <-done:
	case <-time.After(limit):
		tr.Close()
		<-done
	}
	return got
}

func TestLatencyLossMTU(t *testing.T) {
	n := New(Config{Seed: 1, Latency: 30 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.25, MTU: 1000})
	a, b, bAddr := pair(t, n)
	start := time.Now()
	send(t, a, bAddr, 400, 900)
	send(t, a, bAddr, 10, 1001) // over the MTU
	got := recvAll(t, b, 400, 500*time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("delivered after %v; want ≥ 30ms", d)
	}
	st := n.Stats()
	if st.Dropped[DropMTU] != 10 {
		t.Errorf("MTU drops %d, want 10", st.Dropped[DropMTU])
	}
	if loss := st.Dropped[DropLoss]; got+int(loss) != 400 || loss < 60 || loss > 140 {
		t.Errorf("got %d, lost %d of 400 at 25%% loss", got, loss)
	}
}

func TestBandwidth(t *testing.T) {
	// 100 kB/s with a 10 kB bucket: 30 kB take about 200 ms to leave.
	n := New(Config{Bandwidth: 100_000, Burst: 10_000, MaxQueueDelay: time.Second})
	a, b, bAddr := pair(t, n)
	start := time.Now()
	send(t, a, bAddr, 30, 1000)
	if got := recvAll(t, b, 30, 2*time.Second); got != 30 {
		t.Fatalf("got %d of 30", got)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > time.Second {
		t.Errorf("30 kB through 100 kB/s after a 10 kB burst took %v, want about 200ms", d)
	}
	// Beyond MaxQueueDelay the uplink drops.
	n2 := New(Config{Bandwidth: 10_000, Burst: 1000, MaxQueueDelay: 100 * time.Millisecond})
	a2, _, b2 := pair(t, n2)
	send(t, a2, b2, 20, 1000)
	if q := n2.Stats().Dropped[DropQueue]; q < 15 {
		t.Errorf("%d uplink drops, want most of 20", q)
	}
}

func TestDeterministicJitter(t *testing.T) {
	order := func() []byte {
		n := New(Config{Seed: 7, Jitter: 20 * time.Millisecond})
		a, b, bAddr := pair(t, n)
		send(t, a, bAddr, 50, 10)
		pkts := make([]transport.Packet, 64)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 16)
		}
		var out []byte
		time.Sleep(40 * time.Millisecond) // all due: the heap order is the jitter order
		for len(out) < 50 {
			k, err := b.ReadBatch(pkts)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkts[:k] {
				out = append(out, p.Buf[0])
			}
		}
		return out
	}
	x, y := order(), order()
	if string(x) != string(y) {
		t.Errorf("same seed, different delivery order")
	}
	sorted := true
	for i := 1; i < len(x); i++ {
		sorted = sorted && x[i] > x[i-1]
	}
	if sorted {
		t.Errorf("20ms of jitter reordered nothing")
	}
}

func TestAllocator(t *testing.T) {
	a := NewAllocator(1, 3, 7000)
	doms, err := a.NewDomains(4)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := a.Spread(24, doms)
	if err != nil {
		t.Fatal(err)
	}
	tops, mids := map[netip.Prefix]int{}, map[netip.Prefix]int{}
	seen := map[netip.AddrPort]bool{}
	for _, ap := range addrs {
		if seen[ap] || ap.Port() != 7000 {
			t.Fatalf("duplicate or wrong port: %s", ap)
		}
		seen[ap] = true
		l := domain.Of(ap.Addr())
		tops[l[domain.TopLevel]]++
		mids[l[domain.MiddleLevel]]++
	}
	if len(tops) != 4 || len(mids) != 8 {
		t.Errorf("%d /16s and %d /24s, want 4 and 8 (6 nodes per /16, 3 per /24)", len(tops), len(mids))
	}
	b := NewAllocator(1, 3, 7000)
	db, _ := b.NewDomains(4)
	again, _ := b.Spread(24, db)
	for i := range addrs {
		if addrs[i] != again[i] {
			t.Fatalf("same seed, different addresses")
		}
	}
}
