package ipservice

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// flowInfo is the parse of a TCP packet of flow i (its source port).
func flowInfo(i int) ippkt.Info {
	return ippkt.Info{Version: 4, Src: netip.MustParseAddr("100.64.0.2"), Dst: netip.MustParseAddr("198.51.100.7"),
		Proto: ippkt.ProtoTCP, SrcPort: uint16(40000 + i), DstPort: 80, Length: 1240}
}

// bottleneck runs a fair queue whose sender passes one packet per
// interval (a tunnel slower than what enters it) while offer keeps every
// flow's offered load coming, for d of virtual time, and returns the
// packets each flow got through and the drops.
func bottleneck(t *testing.T, flows int, d time.Duration, offer func(q *fairQueue[int], stop <-chan struct{})) (got []int, drops int) {
	got = make([]int, flows)
	var mu sync.Mutex
	var dropped atomic.Int64
	done := make(chan struct{})
	q := newFairQueue(done, fqLimit, func(items []fqItem[int]) {
		for _, it := range items {
			time.Sleep(100 * time.Microsecond) // 10,000 packets/s
			mu.Lock()
			got[it.to]++
			mu.Unlock()
		}
	}, func() { dropped.Add(1) })
	var wg sync.WaitGroup
	wg.Go(q.run)
	stop := make(chan struct{})
	wg.Go(func() { offer(q, stop) })
	time.Sleep(d)
	close(stop)
	close(done)
	wg.Wait()
	return got, int(dropped.Load())
}

// Sixteen flows that each offer more than their share of a bottleneck,
// at different rates, all get about the same: the slowest at least half
// the mean, as issue 15 asks.
func TestFairQueueSharesABottleneck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pkt := make([]byte, 1240)
		got, drops := bottleneck(t, 16, time.Second, func(q *fairQueue[int], stop <-chan struct{}) {
			for tick := 0; ; tick++ {
				select {
				case <-stop:
					return
				default:
				}
				// Flow i sends i+1 packets per 100 µs tick: offered loads
				// from 10,000/s to 160,000/s into a 10,000/s tunnel.
				for i := range 16 {
					for range i + 1 {
						q.push(uint64(i), i, pkt, flowInfo(i))
					}
				}
				q.kick()
				time.Sleep(100 * time.Microsecond)
			}
		})
		checkFair(t, got, 0.5)
		if drops == 0 {
			t.Error("no drops, though every flow offered more than the tunnel carries")
		}
	})
}

// One flow floods (a hundred times what the others send); the others
// still get their whole, small load through, and the flood is what is
// dropped.
func TestFairQueueFloodCannotStarveOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pkt := make([]byte, 1240)
		const flows = 9 // flow 0 floods; flows 1..8 send 500 packets/s each
		got, drops := bottleneck(t, flows, time.Second, func(q *fairQueue[int], stop <-chan struct{}) {
			for tick := 0; ; tick++ {
				select {
				case <-stop:
					return
				default:
				}
				for range 20 {
					q.push(0, 0, pkt, flowInfo(0)) // 200,000/s
				}
				if tick%20 == 0 {
					for i := 1; i < flows; i++ {
						q.push(uint64(i), i, pkt, flowInfo(i))
					}
				}
				q.kick()
				time.Sleep(100 * time.Microsecond)
			}
		})
		t.Logf("packets through: %v; drops %d", got, drops)
		for i := 1; i < flows; i++ {
			// 500 offered in the second; those queued at the end may not
			// have left yet.
			if got[i] < 450 {
				t.Errorf("flow %d got %d of its 500 packets past the flood", i, got[i])
			}
		}
		if drops == 0 {
			t.Errorf("the flood got %d through and nothing was dropped", got[0])
		}
	})
}

// A lone bulk flow that offers more than the tunnel carries keeps the
// tunnel busy: the queue drops only its excess.
func TestFairQueueLoneFlowKeepsTheTunnelBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pkt := make([]byte, 1240)
		got, drops := bottleneck(t, 1, 200*time.Millisecond, func(q *fairQueue[int], stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 2 {
					q.push(0, 0, pkt, flowInfo(0)) // 20,000/s
				}
				q.kick()
				time.Sleep(100 * time.Microsecond)
			}
		})
		t.Logf("%d packets through, %d dropped", got[0], drops)
		if got[0] < 1990 {
			t.Errorf("%d packets through in 200 ms of a 10,000/s bottleneck", got[0])
		}
	})
}

func checkFair(t *testing.T, got []int, want float64) {
	t.Helper()
	sum, least := 0, got[0]
	for _, g := range got {
		sum += g
		least = min(least, g)
	}
	mean := float64(sum) / float64(len(got))
	t.Logf("packets through per flow: %v (mean %.0f)", got, mean)
	if float64(least) < want*mean {
		t.Errorf("the slowest flow got %d packets, under %.0f%% of the mean %.0f", least, want*100, mean)
	}
}
