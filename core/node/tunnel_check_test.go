package node

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// The tunnel check (tunnel_check.go) in virtual time: every node of these
// networks runs on one virtualClock, so "found within Quiet + jitter +
// CheckTimeout" is measured on the clock the nodes decide by.

const (
	chkQuiet   = DefaultTunnelQuiet
	chkTimeout = DefaultTunnelCheckTimeout
	chkTick    = chkQuiet / 8
	// chkBound is the latest a check may report a tunnel that stopped
	// delivering, after the first cell it lost: the check starts at most
	// Quiet + Quiet/2 (the jitter) after the last cell, and gives up
	// CheckTimeout later; one tick covers the test's step granularity and
	// the cells in flight.
	chkBound = chkQuiet + chkQuiet/2 + chkTimeout + chkTick
)

// checkTap is a Tap whose Received callback a test can set while the node
// runs and which can drop what it sees.
type checkTap struct {
	received atomic.Pointer[func(from identity.ID, pl []byte) bool]
	sending  atomic.Pointer[func(to identity.ID, pl []byte)]
}

func (d *checkTap) tap() *Tap {
	return &Tap{
		Received: func(from identity.ID, pl []byte) bool {
			if f := d.received.Load(); f != nil {
				return (*f)(from, pl)
			}
			return true
		},
		Sending: func(to identity.ID, pl []byte) bool {
			if f := d.sending.Load(); f != nil {
				(*f)(to, pl)
			}
			return true
		},
	}
}

// checkNet is a 7-node network on one virtual clock: node 0 a client with
// a fake client adapter, nodes 1..6 exits with fake exit adapters that
// accept UDP to srv. Every adapter is drained, counting what it got.
type checkNet struct {
	*testNet
	vc     *virtualClock
	client *adaptertest.Fake
	cli    *ipShim // node 0's client side (ipshim_test.go)
	exits  map[identity.ID]*adaptertest.Fake
	taps   map[identity.ID]*checkTap
	toCli  atomic.Int64 // packets the client adapter received
	mu     sync.Mutex
	atExit map[identity.ID][]adapter.Packet // packets each exit adapter received
	bg     sync.WaitGroup                   // a test's traffic loops; waited for at cleanup, after the test closed their stop
}

var (
	chkCli = netip.MustParseAddrPort("100.64.0.2:40000")
	chkSrv = netip.MustParseAddrPort("198.51.100.7:9999")
)

func startCheckNet(t *testing.T) *checkNet { return startCheckNetWith(t, nil) }

// startCheckNetWith is startCheckNet with tweak applied to each node's
// options last.
func startCheckNetWith(t *testing.T, tweak func(i int, o *Options)) *checkNet {
	t.Helper()
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:9999", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	cn := &checkNet{vc: newVirtualClock(), client: adaptertest.New(adapter.RoleClient),
		exits: map[identity.ID]*adaptertest.Fake{}, taps: map[identity.ID]*checkTap{},
		atExit: map[identity.ID][]adapter.Packet{}}
	exits := map[int]*adaptertest.Fake{}
	taps := map[int]*checkTap{}
	shims := map[int]*ipShim{}
	cn.testNet = startNet(t, 7, 3, func(i int, o *Options) {
		taps[i] = &checkTap{}
		o.Tap = taps[i].tap()
		if i == 0 {
			shims[i] = clientShim(cn.client)
		} else {
			exits[i] = adaptertest.New(adapter.RoleExit)
			shims[i] = exitShim(exits[i])
			o.Exit, o.ExitHandler, o.ExitPolicy = true, shims[i], pol
		}
		if tweak != nil {
			tweak(i, o)
		}
	})
	cn.cli = shims[0]
	// The drains end at cleanup (a Fake's Written channel never closes):
	// a synctest bubble ends only when every goroutine it started has.
	stop := make(chan struct{})
	var drains sync.WaitGroup
	t.Cleanup(func() { close(stop); drains.Wait() })
	for i, n := range cn.nodes {
		shims[i].start(n)
		cn.taps[n.id] = taps[i]
		if f := exits[i]; f != nil {
			cn.exits[n.id] = f
			drains.Go(func() { cn.drainExit(n.id, f, stop) })
		}
	}
	drains.Go(func() {
		for {
			select {
			case <-cn.client.Written():
				cn.toCli.Add(1)
			case <-stop:
				return
			}
		}
	})
	t.Cleanup(cn.bg.Wait)
	return cn
}

func (cn *checkNet) drainExit(id identity.ID, f *adaptertest.Fake, stop <-chan struct{}) {
	for {
		select {
		case p := <-f.Written():
			cn.mu.Lock()
			cn.atExit[id] = append(cn.atExit[id], p)
			cn.mu.Unlock()
		case <-stop:
			return
		}
	}
}

func (cn *checkNet) exitGot(id identity.ID) []adapter.Packet {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return slices.Clone(cn.atExit[id])
}

// openFlow sends UDP packets of flow 7 to chkSrv until an exit receives
// one, and returns the flow's tunnel and the exit's flow handle.
func (cn *checkNet) openFlow(t *testing.T) (*Tunnel, adapter.Packet) {
	t.Helper()
	req := udpPacket(chkCli, chkSrv, []byte("open"))
	var tun *Tunnel
	var got adapter.Packet
	ok, _ := cn.vc.waitFor(60*time.Second, func() bool {
		if tun == nil {
			cn.client.Inject(adapter.Packet{Buf: req, N: len(req), Flow: 7})
			cn.vc.sleep(200 * time.Millisecond)
			if ts := cn.cli.tunnelsOf(7); len(ts) > 0 {
				tun = ts[0]
			}
			return false
		}
		exit := tun.exitPeer()
		if exit == nil {
			return false
		}
		if ps := cn.exitGot(exit.ID); len(ps) > 0 {
			got = ps[0]
			return true
		}
		return false
	})
	if !ok {
		t.Fatal("no tunnel carried flow 7 to an exit within 60 s of virtual time")
	}
	if len(tun.Hops()) != 3 {
		t.Fatalf("the flow's tunnel has %d hops, want 3", len(tun.Hops()))
	}
	return tun, got
}

// circuitAt returns the circuit IDs a hop of tun uses for it: on its link
// from the previous hop and on its link to the next one.
func (cn *checkNet) circuitAt(t *testing.T, tun *Tunnel, hop int) (in, out uint32) {
	t.Helper()
	hops := tun.hopIDs()
	prevID, prevCirc := cn.nodes[0].id, tun.circID()
	for i := 0; i <= hop; i++ {
		n := cn.byID(hops[i])
		n.mu.Lock()
		r, ok := n.routes[circKey{prevID, prevCirc}]
		n.mu.Unlock()
		if !ok || r.c == nil {
			t.Fatalf("hop %d holds no circuit for the tunnel", i+1)
		}
		r.c.mu.Lock()
		next := r.c.next
		r.c.mu.Unlock()
		if i == hop {
			return prevCirc, next.id
		}
		prevID, prevCirc = hops[i], next.id
	}
	panic("unreachable")
}

// blackHole makes hop (0-based) of tun drop every cell of the tunnel's
// circuit both ways, as a relay that restarted and lost the circuit does,
// and returns the virtual time of the first cell it dropped (zero until
// it drops one).
func (cn *checkNet) blackHole(t *testing.T, tun *Tunnel, hop int) func() time.Time {
	t.Helper()
	hops := tun.hopIDs()
	in, out := cn.circuitAt(t, tun, hop)
	prev := cn.nodes[0].id
	if hop > 0 {
		prev = hops[hop-1]
	}
	var next identity.ID
	if hop+1 < len(hops) {
		next = hops[hop+1]
	}
	var first atomic.Int64
	f := func(from identity.ID, pl []byte) bool {
		if (from == prev && pl[0] == kindRelayFwd && circOf(pl) == in) ||
			(from == next && pl[0] == kindRelayBwd && circOf(pl) == out) {
			first.CompareAndSwap(0, cn.vc.Now().UnixNano())
			return false
		}
		return true
	}
	cn.taps[hops[hop]].received.Store(&f)
	return func() time.Time {
		if ns := first.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
		return time.Time{}
	}
}

// repaired reports whether src has started to replace a hop of tun since
// base repairs and rebuilds: a repair or rebuild finished, or the path
// no longer holds gone.
func repaired(src *Node, tun *Tunnel, base uint64, gone identity.ID) bool {
	if repairsOf(src) > base {
		return true
	}
	return tun.isRepairing() || !slices.Contains(tun.hopIDs(), gone)
}

// uploadOnly injects a UDP packet of flow 7 every 100 ms of virtual time
// until stop is closed; the server never answers.
func (cn *checkNet) uploadOnly(stop <-chan struct{}) {
	pkt := udpPacket(chkCli, chkSrv, []byte("upload"))
	for {
		select {
		case <-stop:
			return
		default:
		}
		cn.client.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: 7})
		cn.vc.sleep(100 * time.Millisecond)
	}
}

// downloadOnly has the exit send 20 UDP packets a second down the flow
// (bulk) until stop is closed; the client sends nothing.
func (cn *checkNet) downloadOnly(exit *adaptertest.Fake, flow uint64, stop <-chan struct{}) {
	pkt := udpPacket(chkSrv, chkCli, []byte("download"))
	for {
		select {
		case <-stop:
			return
		default:
		}
		exit.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
		cn.vc.sleep(50 * time.Millisecond)
	}
}

// A middle relay that silently drops a tunnel's cells (a restart that
// lost the circuit) under an upload-only flow: the initiator notices
// within Quiet + jitter + CheckTimeout of the first lost cell and starts
// a repair that leaves the silent relay out.
func TestTunnelCheckFindsSilentMiddleUpload(t *testing.T) {
	synctest.Test(t, testTunnelCheckFindsSilentMiddleUpload)
}

func testTunnelCheckFindsSilentMiddleUpload(t *testing.T) {
	cn := startCheckNet(t)
	src := cn.nodes[0]
	tun, _ := cn.openFlow(t)
	stop := make(chan struct{})
	defer close(stop)
	cn.bg.Go(func() { cn.uploadOnly(stop) })
	cn.vc.sleep(3 * time.Second) // the flow runs healthy for a while

	middle := tun.hopIDs()[1]
	base := repairsOf(src)
	firstDrop := cn.blackHole(t, tun, 1)
	ok, _ := cn.vc.waitFor(chkBound+5*time.Second, func() bool { return repaired(src, tun, base, middle) })
	if !ok {
		t.Fatalf("nothing noticed in %v of virtual time that the middle relay drops every cell of an upload (first dropped at %v)",
			chkBound+5*time.Second, firstDrop())
	}
	cn.assertFoundInTime(t, tun, firstDrop(), 1, middle)
}

// The same under a download-only flow: the exit streams, the client sends
// nothing, so only the stall itself can tell.
func TestTunnelCheckFindsSilentMiddleDownload(t *testing.T) {
	synctest.Test(t, testTunnelCheckFindsSilentMiddleDownload)
}

func testTunnelCheckFindsSilentMiddleDownload(t *testing.T) {
	cn := startCheckNet(t)
	src := cn.nodes[0]
	tun, got := cn.openFlow(t)
	stop := make(chan struct{})
	defer close(stop)
	cn.bg.Go(func() { cn.downloadOnly(cn.exits[tun.exitPeer().ID], got.Flow, stop) })
	cn.vc.sleep(3 * time.Second)
	if n := cn.toCli.Load(); n < 40 {
		t.Fatalf("the client received %d packets of the download in 3 s, want >= 40", n)
	}

	middle := tun.hopIDs()[1]
	base := repairsOf(src)
	firstDrop := cn.blackHole(t, tun, 1)
	ok, _ := cn.vc.waitFor(chkBound+5*time.Second, func() bool { return repaired(src, tun, base, middle) })
	if !ok {
		t.Fatalf("nothing noticed in %v of virtual time that the middle relay drops every cell of a download (first dropped at %v)",
			chkBound+5*time.Second, firstDrop())
	}
	cn.assertFoundInTime(t, tun, firstDrop(), 1, middle)
}

// assertFoundInTime checks what the tunnel's check reported: hopLost
// with lostHop, within chkBound of the first dropped cell, and the
// silent hop blamed (the repair never walks into it again).
func (cn *checkNet) assertFoundInTime(t *testing.T, tun *Tunnel, firstDrop time.Time, lostHop int, silent identity.ID) {
	t.Helper()
	hop, at := tun.lastCheckLost()
	if at.IsZero() {
		t.Fatal("the tunnel was repaired, but not by its check")
	}
	if hop != lostHop {
		t.Errorf("the check called hopLost(%d), want hopLost(%d)", hop, lostHop)
	}
	took := at.Sub(firstDrop)
	t.Logf("found %v (virtual) after the first dropped cell; bound Quiet + Quiet/2 + CheckTimeout + tick = %v", took, chkBound)
	if took > chkBound || took < 0 {
		t.Errorf("the check reported the lost hop %v after the first dropped cell, want within [0, %v]", took, chkBound)
	}
	tun.mu.Lock()
	blamed := slices.Contains(tun.blamed, silent)
	tun.mu.Unlock()
	if !blamed {
		t.Error("the silent relay is not blamed: a repair could walk into it again")
	}
	if got := cn.nodes[0].Stat(EventTunnelChecksFailed); got != 1 {
		t.Errorf("%s = %d, want 1", EventTunnelChecksFailed, got)
	}
}

// Whichever hop goes silent, the check names it: hopLost(0) for the
// first (no hop answers), hopLost(2) for the exit (the two before it do).
func TestTunnelCheckFindsSilentHop(t *testing.T) {
	for _, hop := range []int{0, 2} {
		t.Run(fmt.Sprintf("hop%d", hop+1), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { // one bubble per subtest
				cn := startCheckNet(t)
				src := cn.nodes[0]
				tun, _ := cn.openFlow(t)
				stop := make(chan struct{})
				defer close(stop)
				cn.bg.Go(func() { cn.uploadOnly(stop) })
				cn.vc.sleep(3 * time.Second)

				silent := tun.hopIDs()[hop]
				base := repairsOf(src)
				firstDrop := cn.blackHole(t, tun, hop)
				if ok, _ := cn.vc.waitFor(chkBound+time.Second, func() bool { return repaired(src, tun, base, silent) }); !ok {
					t.Fatalf("nothing noticed in %v that hop %d drops every cell", chkBound+time.Second, hop+1)
				}
				cn.assertFoundInTime(t, tun, firstDrop(), hop, silent)
			})
		})
	}
}
