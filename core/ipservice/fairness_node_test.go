package ipservice

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// These tests send many flows of one isolation group (so through one
// tunnel) from the client adapter into a client node whose transport
// carries fewer frames than the flows offer, and count, at the exits,
// what each flow got through.

// slowTransport writes one frame per per: a link slower than what
// enters the tunnel.
type slowTransport struct {
	transport.Transport
	per time.Duration
}

func (s slowTransport) WriteBatch(pkts []transport.Packet) error {
	time.Sleep(time.Duration(len(pkts)) * s.per)
	return s.Transport.WriteBatch(pkts)
}

const bottleneckPer = 200 * time.Microsecond // 5,000 frames/s

type flowBed struct {
	*svcNet
	client *adaptertest.Fake
	mu     sync.Mutex
	got    map[uint16]int // packets at the exits, by source port
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startFlowBed(t *testing.T) *flowBed { return startFlowBedFQ(t, 0) }

// startFlowBedFQ is startFlowBed with Options.FairQueue = fq on every node.
func startFlowBedFQ(t *testing.T, fq int) *flowBed {
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:80", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	b := &flowBed{client: adaptertest.New(adapter.RoleClient), got: map[uint16]int{}, stop: make(chan struct{})}
	// Registered before the network's own cleanup, so it runs after it:
	// the exits' adapters must be drained until their nodes stopped.
	t.Cleanup(func() { close(b.stop); b.wg.Wait() })
	var exits []*adaptertest.Fake
	b.svcNet = startSvcNet(t, 7, 3, func(i int, o *node.Options) *Options {
		if i == 0 {
			o.Transport = slowTransport{o.Transport, bottleneckPer}
			return &Options{ClientAdapter: b.client, FairQueue: fq}
		}
		f := adaptertest.New(adapter.RoleExit)
		exits = append(exits, f)
		o.Exit, o.ExitPolicy = true, pol
		return &Options{ExitAdapter: f, FairQueue: fq}
	})
	for _, f := range exits {
		b.wg.Go(func() {
			for {
				select {
				case p := <-f.Written():
					if p.N >= 40 {
						b.mu.Lock()
						b.got[binary.BigEndian.Uint16(p.Buf[20:])]++
						b.mu.Unlock()
					}
				case <-b.stop:
					return
				}
			}
		})
	}
	nodetest.WaitFor(t, "a spare tunnel", 10*time.Second, func() bool { return b.svcs[0].spareCount() > 0 })
	return b
}

var fairSrv = netip.MustParseAddrPort("198.51.100.7:80")

// offer injects, every tick for d, rate(i) packets of 1,200 bytes for
// each flow i (source port 40000+i); at mark it calls marked.
func (b *flowBed) offer(flows int, d, tick, mark time.Duration, marked func(), rate func(i int) int) {
	pkts := make([][]byte, flows)
	for i := range pkts {
		app := netip.AddrPortFrom(netip.MustParseAddr("100.64.0.2"), uint16(40000+i))
		pkts[i] = tcpPacketForTest(app, fairSrv, 1000, 1, 0x10, 1200)
	}
	start := time.Now()
	for end := start.Add(d); time.Now().Before(end); {
		if marked != nil && time.Since(start) >= mark {
			marked()
			marked = nil
		}
		for i := range flows {
			for range rate(i) {
				b.client.Inject(adapter.Packet{Buf: pkts[i], N: len(pkts[i]), Flow: 1})
			}
		}
		time.Sleep(tick)
	}
}

func (b *flowBed) counts(flows int) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]int, flows)
	for i := range out {
		out[i] = b.got[uint16(40000+i)]
	}
	return out
}

// Sixteen flows, each offering a different load, all above its share of
// the tunnel: each gets about the same.
func TestFlowsShareATunnelFairly(t *testing.T) { synctest.Test(t, testFlowsShareATunnelFairly) }

func testFlowsShareATunnelFairly(t *testing.T) {
	b := startFlowBed(t)
	// Measured from 1.5 s on: the engine's transport queue (4,096 frames,
	// 0.8 s at this bottleneck) first fills with what came before the
	// fair queue had a backlog.
	var before []int
	b.offer(16, 3*time.Second, 5*time.Millisecond, 1500*time.Millisecond, func() { before = b.counts(16) },
		func(i int) int { return 2 + i/4 }) // 400/s to 1,000/s each, 11,200/s in all; 5,000/s get through
	got := b.counts(16)
	for i := range got {
		got[i] -= before[i]
	}
	// Issue 15 asks for the slowest at half the mean at least; a fair
	// queue does much better (backpressure alone gave 0.57 here).
	checkFair(t, got, 0.8)
	t.Logf("drop_flow_queue %d", b.Nodes[0].Stat(DropFlowQueue))
}

// One flow floods the tunnel at four times its capacity; eight others
// send 200 packets/s each, well within theirs. They get (about) all of
// it through, and the flood is what the client drops.
func TestFloodingFlowCannotStarveOthers(t *testing.T) {
	synctest.Test(t, testFloodingFlowCannotStarveOthers)
}

func testFloodingFlowCannotStarveOthers(t *testing.T) {
	b := startFlowBed(t)
	tick := 0
	b.offer(9, time.Second, time.Millisecond, 0, nil, func(i int) int {
		if i == 0 {
			tick++
			return 20 // 20,000/s
		}
		if tick%5 == 0 {
			return 1
		}
		return 0
	})
	time.Sleep(time.Second) // the transport queue drains
	got := b.counts(9)
	t.Logf("packets at the exits per flow (flow 0 floods): %v; drop_flow_queue %d", got, b.Nodes[0].Stat(DropFlowQueue))
	for i := 1; i < 9; i++ {
		if got[i] < 180 {
			t.Errorf("flow %d got %d of its 200 packets past the flood", i, got[i])
		}
	}
}

// Without the fair queue (Options.FairQueue < 0) the reader sends into
// the tunnel itself: every flow still gets through, in the shares the
// adapter offers them (what main did; the figures in D39).
func TestWithoutFairQueue(t *testing.T) { synctest.Test(t, testWithoutFairQueue) }

func testWithoutFairQueue(t *testing.T) {
	b := startFlowBedFQ(t, -1)
	b.offer(4, 500*time.Millisecond, 5*time.Millisecond, 0, nil, func(i int) int { return 1 + i })
	time.Sleep(time.Second) // the transport queue drains
	got := b.counts(4)
	t.Logf("packets at the exits per flow: %v", got)
	for i, g := range got {
		if g != 100*(i+1) {
			t.Errorf("flow %d: %d packets at the exits, want all %d", i, g, 100*(i+1))
		}
	}
	if d := b.Nodes[0].Stat(DropFlowQueue); d != 0 {
		t.Errorf("drop_flow_queue %d without a fair queue", d)
	}
}
