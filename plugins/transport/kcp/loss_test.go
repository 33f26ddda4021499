package kcp

import (
	"encoding/binary"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/transport/udp"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// TestLossProfile measures delivery and one-way latency of 1408-byte
// datagrams at a fixed offered load over a lossy link, for several
// parameter sets, beside plain UDP. It is a measurement, not a check, and
// takes about a minute: run it with
//
//	TARZAN_LOSS_PROFILE=1 go test -run LossProfile -v ./plugins/transport/kcp/
//
// The link is the loopback relay in relay_test.go (i.i.d. loss in each
// direction, 10 ms each way), standing in for tc netem.
func TestLossProfile(t *testing.T) {
	if os.Getenv("TARZAN_LOSS_PROFILE") == "" {
		t.Skip("set TARZAN_LOSS_PROFILE=1 to measure")
	}
	const (
		rate     = 2000 // datagrams per second
		duration = 3 * time.Second
		delay    = 10 * time.Millisecond
	)
	sets := []struct {
		name string
		new  func() (transport.Transport, error)
	}{
		{"udp", func() (transport.Transport, error) { return udp.New(nil) }},
		{"kcp fec=0+0", func() (transport.Transport, error) {
			return New(map[string]string{"fec_data": "0", "fec_parity": "0"})
		}},
		{"kcp fec=10+3", func() (transport.Transport, error) { return New(nil) }},
		{"kcp fec=4+2", func() (transport.Transport, error) {
			return New(map[string]string{"fec_data": "4", "fec_parity": "2"})
		}},
	}
	for _, loss := range []float64{0, 0.01, 0.05} {
		for _, set := range sets {
			r := profile(t, set.new, loss, delay, rate, duration)
			t.Logf("loss %4.1f%%  %-13s delivered %6.2f%%  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  wire %5.1f%% of payload",
				100*loss, set.name, r.delivered, r.p50, r.p99, r.max, r.wire)
		}
	}
}

type profileResult struct {
	delivered, p50, p99, max, wire float64
}

func profile(t *testing.T, newT func() (transport.Transport, error), loss float64, delay time.Duration, rate int, duration time.Duration) profileResult {
	start := func() (transport.Transport, *node) {
		tr, err := newT()
		if err != nil {
			t.Fatal(err)
		}
		addr, err := tr.Listen(netipLoopback)
		if err != nil {
			t.Fatal(err)
		}
		return tr, &node{tr: tr, addr: addr}
	}
	rxT, rx := start()
	defer rxT.Close()
	txT, _ := start()
	defer txT.Close()
	link := newRelay(t, rx.addr, loss, delay)

	type arrival struct{ seq, latency int64 }
	arrivals := make(chan arrival, rate*int(duration/time.Second)*2)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for {
			n, err := rxT.ReadBatch(pkts)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			for _, p := range pkts[:n] {
				select {
				case arrivals <- arrival{int64(binary.BigEndian.Uint64(p.Buf)), now - int64(binary.BigEndian.Uint64(p.Buf[8:]))}:
				default:
				}
			}
		}
	}()

	total := rate * int(duration/time.Second)
	perTick := rate / 1000
	tick := time.NewTicker(time.Millisecond)
	batch := make([]transport.Packet, perTick)
	for i := range batch {
		batch[i] = transport.Packet{Addr: link.addr(), Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	for seq := 0; seq < total; {
		<-tick.C
		for i := range batch {
			binary.BigEndian.PutUint64(batch[i].Buf, uint64(seq))
			binary.BigEndian.PutUint64(batch[i].Buf[8:], uint64(time.Now().UnixNano()))
			seq++
		}
		if err := txT.WriteBatch(batch); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	time.Sleep(time.Second) // let retransmissions land
	rxT.Close()
	<-readDone
	close(arrivals)

	seen := make(map[int64]bool)
	var lat []float64
	for a := range arrivals {
		if !seen[a.seq] {
			seen[a.seq] = true
			lat = append(lat, float64(a.latency)/1e6)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return profileResult{
		delivered: 100 * float64(len(seen)) / float64(total),
		p50:       pct(0.5), p99: pct(0.99), max: pct(1),
		wire: 100 * float64(link.bytes.Load()) / float64(total*transport.MaxDatagram),
	}
}
