package ipservice

import (
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// BenchmarkTunnelEntry sends rounds of 64 packets of one flow (one
// adapter batch) from a client adapter through a 3-hop tunnel of
// in-memory nodes, each round waiting until the exits have them all:
// the cost of a tunnel's entry while the engine is not backed up, with
// the fair queue's inline send (Options.FairQueueInline, D46), with
// every packet handed to the queue's sender (the default) and as in D39
// (Options.FairQueueAlways). cpu-ns/pkt is the
// process's user+system CPU per packet, every node included.
func BenchmarkTunnelEntry(b *testing.B) {
	for _, c := range []struct {
		name           string
		always, inline bool
	}{{"inline", false, true}, {"handoff", false, false}, {"d39", true, false}} {
		b.Run(c.name, func(b *testing.B) { benchTunnelEntry(b, c.always, c.inline) })
	}
}

func benchTunnelEntry(b *testing.B, always, inline bool) {
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:80", "reject *:*"})
	if err != nil {
		b.Fatal(err)
	}
	client := adaptertest.New(adapter.RoleClient)
	var got, target atomic.Int64
	arrived := make(chan struct{}, 1)
	stop := make(chan struct{})
	var svcs []*Service
	net := nodetest.Start(b, nodetest.Config{Nodes: 7, K: 3,
		Tweak: func(i int, o *node.Options) {
			opts := Options{ClientAdapter: client, FairQueueAlways: always, FairQueueInline: inline}
			if i > 0 {
				f := adaptertest.New(adapter.RoleExit)
				go func() {
					for {
						select {
						case <-f.Written():
							if got.Add(1) == target.Load() {
								arrived <- struct{}{}
							}
						case <-stop:
							return
						}
					}
				}()
				o.Exit, o.ExitPolicy = true, pol
				opts = Options{ExitAdapter: f, FairQueueAlways: always, FairQueueInline: inline}
			}
			s, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			svcs = append(svcs, s)
			o.ExitHandler = s.ExitHandler()
		},
		Attach: func(i int, n *node.Node) {
			if err := svcs[i].Start(n); err != nil {
				b.Fatal(err)
			}
		},
	})
	b.Cleanup(func() { close(stop) })
	_ = net
	nodetest.WaitFor(b, "a spare tunnel", 20*time.Second, func() bool { return svcs[0].spareCount() > 0 })
	app := netip.AddrPortFrom(netip.MustParseAddr("100.64.0.2"), 40000)
	pkt := tcpPacketForTest(app, fairSrv, 1000, 1, 0x10, 1200)
	batch := make([]adapter.Packet, 64)
	for i := range batch {
		batch[i] = adapter.Packet{Buf: pkt, N: len(pkt), Flow: 1}
	}
	round := func() bool {
		target.Store(got.Load() + int64(len(batch)))
		client.Inject(batch...)
		select {
		case <-arrived:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	for range 20 { // the tunnel is built and warm
		if !round() {
			b.Fatal("a warm-up round did not arrive")
		}
	}
	cpu0 := cpuNow()
	b.ResetTimer()
	for range b.N {
		if !round() {
			b.Fatal("a round of 64 packets did not arrive within 5 s")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N*len(batch)), "cpu-ns/pkt")
	b.ReportMetric(0, "ns/op")
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
