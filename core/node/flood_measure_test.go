package node

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
)

// TestFloodPingMeasure measures what a flood does to an honest tunnel
// through the victim: the tunnel's ping median over a quiet period, then
// under a flood of link handshake initiations from a mimic's IP on
// another port, then under a flood of probes from 1,000 addresses, each at
// 2,000 datagrams a second; and the process's heap after each (every node
// runs in this process, so it bounds the victim's). It is a measurement,
// not a check, and runs only when asked:
//
//	TARZAN_FLOOD=30s go test -run TestFloodPingMeasure -v ./core/node/
//
// (the value is each period's length). With TARZAN_FLOOD_LIMITS=off every
// node runs without the probe and handshake limits, as version 1 did.
func TestFloodPingMeasure(t *testing.T) {
	period, err := time.ParseDuration(os.Getenv("TARZAN_FLOOD"))
	if err != nil || period <= 0 {
		t.Skip("set TARZAN_FLOOD to a period (e.g. 30s) to run this measurement")
	}
	const rate = 2000 // datagrams per second
	limitsOff := os.Getenv("TARZAN_FLOOD_LIMITS") == "off"
	tn := startNet(t, 10, 3, func(i int, o *Options) {
		if limitsOff {
			o.ProbeRate, o.ProbeGlobalRate, o.HandshakeRate = -1, -1, -1
		}
	})
	src := tn.nodes[0]
	ctx := context.Background()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	hops := tun.Hops()
	victim := tn.byID(hops[1].ID) // the middle hop
	onPath := map[netip.AddrPort]bool{src.Addr(): true}
	for _, h := range hops {
		onPath[tn.byID(h.ID).Addr()] = true
	}
	var mimicAddr netip.AddrPort
	for _, m := range victim.Mimics() {
		if a := tn.byID(m.ID).Addr(); !mimicAddr.IsValid() || !onPath[a] {
			mimicAddr = a
		}
	}
	t.Logf("limits off: %v; tunnel %s → %s → %s → %s; victim %s (hop 2); flooding from %v and 1,000 addresses", limitsOff,
		src.id.Short(), hops[0].ID.Short(), hops[1].ID.Short(), hops[2].ID.Short(), victim.id.Short(), sameIPOtherPort(mimicAddr))

	// Handshake flood: one valid initiation from an identity no one
	// admitted, repeated.
	hsAtt := newCountingPeer(tn, sameIPOtherPort(mimicAddr))
	st, _ := link.NewStatic(randReader{})
	_, initFrame, err := link.Initiate(st, newIdentity(t).ID(), mustParse(t, victim.Descriptor()).LinkKey, 7, randReader{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Probe flood: 1,000 sources, each with a valid descriptor listing it.
	att := newIdentity(t)
	var probers []*rawPeer
	var probes [][]byte
	for i := range 1000 {
		r := newCountingPeer(tn, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 240, byte(i >> 8), byte(i)}), 7700))
		d := signedDescriptor(t, att, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, r.addr)
		f, _ := link.EncodeProbe([32]byte{byte(i), byte(i >> 8)}, d)
		probers, probes = append(probers, r), append(probes, f)
	}

	// measure pings the last hop every 20 ms for the period while flood
	// (if any) sends rate datagrams a second in 10 ms batches.
	measure := func(name string, flood func(i int)) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			if flood == nil {
				return
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			i := 0
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					for range rate / 100 {
						flood(i)
						i++
					}
				}
			}
		}()
		before := victim.Stats()
		var rtts []time.Duration
		lost := 0
		end := time.Now().Add(period)
		for time.Now().Before(end) {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			d, err := tun.Ping(pctx, 2)
			cancel()
			if err != nil {
				lost++
			} else {
				rtts = append(rtts, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		<-done
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		g := victim.guard()
		t.Logf("%-16s ping median %8v over %d pings (%d lost); heap %6.1f MiB; victim limiter sources: probes %d, handshakes %d; victim counters %v",
			name, medianDur(rtts), len(rtts), lost, float64(ms.HeapAlloc)/(1<<20), g.probes.len(), g.handshakes.len(), statsDelta(before, victim.Stats()))
	}
	measure("quiet", nil)
	measure("handshake flood", func(int) { hsAtt.send(victim.Addr(), initFrame) })
	measure("probe flood", func(i int) { probers[i%len(probers)].send(victim.Addr(), probes[i%len(probes)]) })
	measure("quiet again", nil)
}
