package transporttest_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func TestMemConformance(t *testing.T) {
	n := transporttest.NewNetwork()
	transporttest.Run(t, func(*testing.T) transport.Transport { return n.NewTransport() })
}

func TestMemLossAndLatency(t *testing.T) {
	n := transporttest.NewNetwork(transporttest.WithLoss(0.5), transporttest.WithSeed(1), transporttest.WithLatency(20*time.Millisecond))
	a, b := n.NewTransport(), n.NewTransport()
	defer a.Close()
	defer b.Close()
	a.Listen(netip.MustParseAddrPort("10.0.0.1:0"))
	bAddr, _ := b.Listen(netip.MustParseAddrPort("10.0.0.2:7"))
	const sent = 200
	batch := make([]transport.Packet, sent)
	for i := range batch {
		batch[i] = transport.Packet{Addr: bAddr, Buf: []byte{byte(i)}, N: 1}
	}
	start := time.Now()
	if err := a.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
	pkts := make([]transport.Packet, sent)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 8)
	}
	got, err := b.ReadBatch(pkts)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("delivered after %v; want ≥ 20ms latency", d)
	}
	if dropped := n.Dropped(); got+int(dropped) != sent || dropped < 50 || dropped > 150 {
		t.Errorf("got %d, dropped %d of %d with 50%% loss", got, dropped, sent)
	}
	// Nobody listens here: dropped, not an error.
	before := n.Dropped()
	a.WriteBatch([]transport.Packet{{Addr: netip.MustParseAddrPort("10.9.9.9:1"), Buf: []byte{1}, N: 1}})
	if n.Dropped() != before+1 {
		t.Error("datagram to an unbound address was not counted as dropped")
	}
}
