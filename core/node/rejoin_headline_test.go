package node

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// The headline, in process: a middle relay dies under a flow; the
// repaired tunnel reaches the SAME exit circuit, whose adapter still holds
// the flow (its handle is what the exit's NAT keys its mappings by), and
// the flow carries on both ways.
//
// These tests run in synctest bubbles (synctest_helpers_test.go): every
// wait is in virtual time. They still drive what is timed explicitly
// (the detection that the liveness check makes is a call to hopLost;
// orphan expiry is called with a chosen now), and every wait says what it
// saw.

// exitNet is a network where every node but the source is an exit whose
// adapter is a fake keeping per-flow state (the flow handle), and the
// source has a fake client adapter. Its nodes choose 5 mimics each, so
// that a walk through new hops to a given exit exists in 10 nodes (with 3
// it sometimes does not, and the repair rightly falls back to a fresh
// path).
type exitNet struct {
	*testNet
	src    *Node
	client *adaptertest.Fake
	cli    *ipShim // the source's client side (ipshim_test.go)
	exits  map[identity.ID]*adaptertest.Fake
	taps   []*tapSwitch
}

// tapSwitch lets a test set a node's Tap functions after start.
type tapSwitch struct {
	mu        sync.Mutex
	sending   func(to identity.ID, pl []byte) bool
	received  func(from identity.ID, pl []byte) bool
	delivered func(from identity.ID, circ uint32, cmd byte, data []byte)
}

func (s *tapSwitch) tap() *Tap {
	return &Tap{
		Sending: func(to identity.ID, pl []byte) bool {
			s.mu.Lock()
			f := s.sending
			s.mu.Unlock()
			return f == nil || f(to, pl)
		},
		Received: func(from identity.ID, pl []byte) bool {
			s.mu.Lock()
			f := s.received
			s.mu.Unlock()
			return f == nil || f(from, pl)
		},
		Delivered: func(from identity.ID, circ uint32, cmd byte, data []byte) {
			s.mu.Lock()
			f := s.delivered
			s.mu.Unlock()
			if f != nil {
				f(from, circ, cmd, data)
			}
		},
	}
}

func startExitNet(t *testing.T, tweak func(i int, o *Options)) *exitNet {
	en := &exitNet{client: adaptertest.New(adapter.RoleClient), exits: map[identity.ID]*adaptertest.Fake{}}
	fakes := make([]*adaptertest.Fake, 10)
	shims := make([]*ipShim, 10)
	for range fakes {
		en.taps = append(en.taps, &tapSwitch{})
	}
	en.testNet = startNet(t, 10, 5, func(i int, o *Options) {
		o.Tap = en.taps[i].tap()
		if i == 0 {
			// No spare tunnels: only the test's tunnels, so what passes
			// between two nodes is the test's.
			shims[i] = clientShim(en.client)
		} else {
			fakes[i] = adaptertest.New(adapter.RoleExit)
			shims[i] = exitShim(fakes[i])
			o.Exit, o.ExitHandler = true, shims[i]
		}
		if tweak != nil {
			tweak(i, o)
		}
	})
	en.src, en.cli = en.nodes[0], shims[0]
	for i, n := range en.nodes {
		shims[i].start(n)
	}
	for i, n := range en.nodes[1:] {
		en.exits[n.id] = fakes[i+1]
	}
	return en
}

var flowDst = netip.MustParseAddrPort("93.184.216.34:443")

// upload sends one UDP packet with marker through tun and returns the flow
// handle the exit's adapter received it under.
func (en *exitNet) upload(t *testing.T, tun *Tunnel, exit identity.ID, marker string) uint64 {
	t.Helper()
	pkt, err := ippkt.AppendUDP(nil, netip.MustParseAddrPort("100.64.0.2:5000"), flowDst, []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	fake := en.exits[exit]
	deadline := time.After(20 * time.Second)
	resend := time.NewTicker(500 * time.Millisecond) // a datagram may meet a link being replaced
	defer resend.Stop()
	if err := tun.SendData(pkt); err != nil {
		t.Fatalf("sending %q: %v", marker, err)
	}
	for {
		select {
		case p := <-fake.Written():
			if bytes.Contains(p.Buf, []byte(marker)) {
				return p.Flow
			}
		case <-resend.C:
			tun.SendData(pkt)
		case <-deadline:
			t.Fatalf("the exit %s never received %q", exit.Short(), marker)
		}
	}
}

// download has the exit's adapter answer on flow and waits for the
// answer at the source's client adapter.
func (en *exitNet) download(t *testing.T, exit identity.ID, flow uint64, marker string) {
	t.Helper()
	pkt, err := ippkt.AppendUDP(nil, flowDst, netip.MustParseAddrPort("100.64.0.2:5000"), []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	fake := en.exits[exit]
	fake.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
	deadline := time.After(20 * time.Second)
	resend := time.NewTicker(500 * time.Millisecond)
	defer resend.Stop()
	for {
		select {
		case p := <-en.client.Written():
			if bytes.Contains(p.Buf, []byte(marker)) {
				return
			}
		case <-resend.C:
			fake.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
		case <-deadline:
			t.Fatalf("the source never received %q from flow %d at the exit %s", marker, flow, exit.Short())
		}
	}
}

// kill stops n as SIGKILL would: its transports go first, so it says
// nothing to anyone, then its goroutines.
func kill(n *Node) {
	for _, s := range n.opts.Transports {
		s.Transport.Close()
	}
	n.Close()
}

// exitCircuitOf finds the relay circuit at exit that carries flow.
func exitCircuitOf(exit *Node, flow uint64) *circuit {
	exit.mu.Lock()
	defer exit.mu.Unlock()
	for _, r := range exit.routes {
		if r.c != nil && !r.fromNext && r.c.exitFlow.Load() == flow {
			return r.c
		}
	}
	return nil
}

// buildFlow builds a 3-hop tunnel from the source and starts a flow
// through it both ways; it returns the tunnel, its hops and the flow.
func (en *exitNet) buildFlow(t *testing.T) (*Tunnel, []identity.ID, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tun, err := en.cli.buildExitTunnel(ctx, 3, "udp", flowDst, 0)
	if err != nil {
		t.Fatal(err)
	}
	hops := tun.hopIDs()
	flow := en.upload(t, tun, hops[2], "before-1")
	en.download(t, hops[2], flow, "before-2")
	return tun, hops, flow
}

// waitRepaired waits until tun is built again around a lost middle.
func waitRepaired(t *testing.T, tun *Tunnel, dead identity.ID) []identity.ID {
	t.Helper()
	var hops []identity.ID
	waitFor(t, "the tunnel to be repaired around the dead middle", 60*time.Second, func() bool {
		hops = tun.hopIDs()
		return !tun.isClosed() && !tun.isRepairing() && len(hops) == 3 && !slices.Contains(hops, dead)
	})
	return hops
}

// checkSameFlow asserts that the repaired tunnel reaches the same exit
// circuit and flow as before and that the flow carries on both ways.
func (en *exitNet) checkSameFlow(t *testing.T, tun *Tunnel, before []identity.ID, flow uint64) {
	t.Helper()
	after := tun.hopIDs()
	if after[2] != before[2] {
		t.Logf("source counters: %v", en.src.stats.snapshot())
		t.Fatalf("the repair replaced the exit %s by %s: every flow through it is lost", before[2].Short(), after[2].Short())
	}
	exit := en.byID(after[2])
	if slices.Contains(en.exits[after[2]].ClosedFlows(), flow) {
		t.Fatalf("the exit closed flow %d", flow)
	}
	if got := en.upload(t, tun, after[2], "after-1"); got != flow {
		t.Fatalf("after the repair the exit's adapter saw the flow as %d, want %d (the same exit circuit)", got, flow)
	}
	en.download(t, after[2], flow, "after-2")
	c := exitCircuitOf(exit, flow)
	if c == nil {
		t.Fatal("the exit holds no circuit for the flow")
	}
	exit.mu.Lock()
	prev := c.prev
	exit.mu.Unlock()
	if prev.peer != after[1] {
		t.Fatalf("the exit's circuit comes from %s, want the new middle %s", prev.peer.Short(), after[1].Short())
	}
}

// Detection by the liveness check (its hook, hopLost) while the exit
// still believes its old predecessor alive.
func TestKeepExitRepairMiddleKilled(t *testing.T) { synctest.Test(t, testKeepExitRepairMiddleKilled) }

func testKeepExitRepairMiddleKilled(t *testing.T) {
	en := startExitNet(t, nil)
	tun, hops, flow := en.buildFlow(t)
	kill(en.byID(hops[1]))
	tun.hopLost(1) // what the liveness check calls when hop 2 stops answering
	waitRepaired(t, tun, hops[1])
	en.checkSameFlow(t, tun, hops, flow)
}

// Detection by the links: hop 1's link to the dead middle times out
// (TRUNCATED to the initiator) and so does the exit's (its circuit
// becomes an orphan), in either order.
func TestKeepExitRepairMiddleKilledLinkTimeout(t *testing.T) {
	synctest.Test(t, testKeepExitRepairMiddleKilledLinkTimeout)
}

func testKeepExitRepairMiddleKilledLinkTimeout(t *testing.T) {
	en := startExitNet(t, func(i int, o *Options) {
		o.LinkTimeout, o.KeepaliveInterval = 3*time.Second, 250*time.Millisecond
	})
	tun, hops, flow := en.buildFlow(t)
	kill(en.byID(hops[1]))
	waitRepaired(t, tun, hops[1])
	en.checkSameFlow(t, tun, hops, flow)
}

// A download does not stop for the repair: until the exit learns of the
// new path it keeps sending the flow's packets into the dead one (here
// 13,000 cells, three key generations, more than the windows look ahead
// for an ordinary cell), and the initiator keeps sending too; the cells
// are lost, and the repaired tunnel still opens what the exit sends next:
// the first cell each way after a rejoin may jump the gap.
func TestKeepExitRepairAcrossCounterGap(t *testing.T) {
	synctest.Test(t, testKeepExitRepairAcrossCounterGap)
}

func testKeepExitRepairAcrossCounterGap(t *testing.T) {
	en := startExitNet(t, nil)
	tun, hops, flow := en.buildFlow(t)
	exit := en.byID(hops[2])
	kill(en.byID(hops[1]))
	const lost = 13000
	sent := func() uint64 {
		return exit.Stat(EventFramesOut) + exit.Stat(DropQueueFull) + exit.Stat(DropTransportWrite)
	}
	before := sent()
	pkt, err := ippkt.AppendUDP(nil, flowDst, netip.MustParseAddrPort("100.64.0.2:5000"), make([]byte, 1000))
	if err != nil {
		t.Fatal(err)
	}
	for range lost {
		en.exits[hops[2]].Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
	}
	up, _ := ippkt.AppendUDP(nil, netip.MustParseAddrPort("100.64.0.2:5000"), flowDst, []byte("into the void"))
	for range 200 {
		tun.SendData(up)
	}
	waitFor(t, "the exit to send the flow's packets into the dead path", 60*time.Second, func() bool {
		return sent()-before >= lost
	})
	tun.hopLost(1)
	waitRepaired(t, tun, hops[1])
	en.checkSameFlow(t, tun, hops, flow)
}

// The first hop dies: the source's link to it times out, and the tunnel
// is repaired through a new first hop and a new middle to the same exit
// circuit (on main the tunnel closed with its link).
func TestKeepExitRepairFirstHopKilled(t *testing.T) {
	synctest.Test(t, testKeepExitRepairFirstHopKilled)
}

func testKeepExitRepairFirstHopKilled(t *testing.T) {
	en := startExitNet(t, func(i int, o *Options) {
		o.LinkTimeout, o.KeepaliveInterval = 3*time.Second, 250*time.Millisecond
	})
	tun, hops, flow := en.buildFlow(t)
	kill(en.byID(hops[0]))
	var after []identity.ID
	waitFor(t, "the tunnel to be repaired around the dead first hop", 60*time.Second, func() bool {
		if tun.isClosed() {
			t.Fatal("the tunnel closed with the link to its first hop")
		}
		after = tun.hopIDs()
		return !tun.isRepairing() && len(after) == 3 && !slices.Contains(after, hops[0])
	})
	en.checkSameFlow(t, tun, hops, flow)
}

// A relay that stops cleanly says goodbye (DESTROY both ways, D24). To
// its neighbours that is a failure to heal around, not the end of the
// tunnel: stopping the first hop or the middle costs the flow through
// the exit nothing. (Before, the first hop's DESTROY closed the tunnel
// and reset every connection through it.)
func TestKeepExitRepairRelayStopsCleanly(t *testing.T) {
	for _, pos := range []int{0, 1} {
		t.Run([]string{"first hop", "middle"}[pos], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { keepExitRepairRelayStopsCleanly(t, pos) })
		})
	}
}

func keepExitRepairRelayStopsCleanly(t *testing.T, pos int) {
	en := startExitNet(t, nil)
	tun, hops, flow := en.buildFlow(t)
	en.byID(hops[pos]).Close()
	var after []identity.ID
	waitFor(t, "the tunnel to be repaired around the relay that stopped", 60*time.Second, func() bool {
		if tun.isClosed() {
			t.Fatalf("the tunnel closed when hop %d stopped cleanly", pos+1)
		}
		after = tun.hopIDs()
		return !tun.isRepairing() && len(after) == 3 && !slices.Contains(after, hops[pos])
	})
	en.checkSameFlow(t, tun, hops, flow)
}
