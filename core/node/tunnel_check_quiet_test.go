package node

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/clock"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/cover/covertest"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// What the check must not do: probe a tunnel that is quiet because its
// traffic ended, or repair one whose server is silent.

// countForward counts the RELAY_FWD cells node 0 sends on tun's circuit
// to its first hop, from now on.
func (cn *checkNet) countForward(tun *Tunnel) *atomic.Int64 {
	var count atomic.Int64
	first, circ := tun.hopIDs()[0], tun.circID()
	f := func(to identity.ID, pl []byte) {
		if to == first && pl[0] == kindRelayFwd && circOf(pl) == circ {
			count.Add(1)
		}
	}
	cn.taps[cn.nodes[0].id].sending.Store(&f)
	return &count
}

// A request answered by the server, then nothing: the exit was heard
// after the last cell sent, so neither trigger holds and not one check
// cell leaves, however long the tunnel stays quiet.
func TestTunnelCheckQuietHealthyTunnelSendsNothing(t *testing.T) {
	synctest.Test(t, testTunnelCheckQuietHealthyTunnelSendsNothing)
}

func testTunnelCheckQuietHealthyTunnelSendsNothing(t *testing.T) {
	cn := startCheckNet(t)
	src := cn.nodes[0]
	tun, got := cn.openFlow(t)
	exit := cn.exits[tun.exitPeer().ID]
	cn.vc.sleep(300 * time.Millisecond) // requests still in flight land
	for i := range 3 {                  // a few answers, as a server gives
		reply := udpPacket(chkSrv, chkCli, []byte("answer"))
		exit.Inject(adapter.Packet{Buf: reply, N: len(reply), Flow: got.Flow})
		if ok, _ := cn.vc.waitFor(5*time.Second, func() bool { return cn.toCli.Load() > int64(i) }); !ok {
			t.Fatalf("answer %d did not reach the client", i+1)
		}
	}
	cells := cn.countForward(tun)
	checks := src.Stat(EventTunnelChecks)
	cn.vc.sleep(10 * chkQuiet)
	if n := cells.Load(); n != 0 {
		t.Errorf("a quiet, answered tunnel sent %d cells in %v; want none", n, 10*chkQuiet)
	}
	if n := src.Stat(EventTunnelChecks); n != checks {
		t.Errorf("%d checks while the tunnels were quiet; want none", n-checks)
	}
}

// A flow whose packets reach the exit but whose server never answers
// (a lost UDP request, a dead server): the check runs once, every hop
// answers, nothing is repaired, and no further check follows until new
// traffic does. On the wire that is one ping per hop, nothing else.
func TestTunnelCheckSilentServerNotRepaired(t *testing.T) {
	synctest.Test(t, testTunnelCheckSilentServerNotRepaired)
}

func testTunnelCheckSilentServerNotRepaired(t *testing.T) {
	cn := startCheckNet(t)
	src := cn.nodes[0]
	tun, _ := cn.openFlow(t)
	cn.vc.sleep(3 * chkQuiet) // a check for openFlow's unanswered packets ends
	hops := tun.hopIDs()
	checks, failed := src.Stat(EventTunnelChecks), src.Stat(EventTunnelChecksFailed)
	repairs := repairsOf(src)
	cells := cn.countForward(tun)

	pkt := udpPacket(chkCli, chkSrv, []byte("anyone there?"))
	exitID := tun.exitPeer().ID
	before := len(cn.exitGot(exitID))
	for range 3 {
		cn.client.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: 7})
		cn.vc.sleep(100 * time.Millisecond)
	}
	ok, took := cn.vc.waitFor(chkBound, func() bool { return src.Stat(EventTunnelChecks) > checks })
	if !ok {
		t.Fatalf("no check within %v of a request the server never answered", chkBound)
	}
	if took < chkQuiet-300*time.Millisecond {
		t.Errorf("the check started %v after the request; want no sooner than Quiet (%v) after the first packet", took, chkQuiet)
	}
	cn.vc.sleep(10 * chkQuiet)
	if n := len(cn.exitGot(exitID)) - before; n != 3 {
		t.Fatalf("the exit adapter got %d of the 3 packets", n)
	}
	if n := src.Stat(EventTunnelChecks) - checks; n != 1 {
		t.Errorf("%d checks for one unanswered request; want 1 (none again without new traffic)", n)
	}
	if n := src.Stat(EventTunnelChecksFailed) - failed; n != 0 {
		t.Errorf("%d failed checks on a healthy tunnel", n)
	}
	if n := repairsOf(src) - repairs; n != 0 || tun.isRepairing() {
		t.Errorf("a healthy tunnel whose server is silent was repaired (%d)", n)
	}
	if !slices.Equal(tun.hopIDs(), hops) {
		t.Error("the tunnel's path changed")
	}
	if n, want := cells.Load(), int64(3+len(hops)); n != want {
		t.Errorf("%d cells left on the circuit: want the 3 packets and one ping per hop (%d)", n, want)
	}
}

// Trigger B takes a burst: checkBulkCells DATA cells from the exit within
// checkBulkSpan, the last one the last cell heard. One cell fewer, the
// burst too slow, or anything heard after it, and a silence is left
// alone (the flow's own timing, or an answered check).
func TestTunnelCheckBulkTrigger(t *testing.T) {
	at := time.Unix(1_000_000, 0)
	heard := func(c *tunnelCheck, count int, gap time.Duration) time.Time {
		var last time.Time
		for i := range count {
			last = at.Add(time.Duration(i) * gap)
			c.heard = last
			c.data[c.dnext] = last
			c.dnext = (c.dnext + 1) % checkBulkCells
		}
		return last
	}
	var c tunnelCheck
	last := heard(&c, checkBulkCells-1, 50*time.Millisecond)
	if a := c.anchorLocked(); !a.IsZero() {
		t.Errorf("%d cells made a burst", checkBulkCells-1)
	}
	c = tunnelCheck{}
	last = heard(&c, checkBulkCells, 50*time.Millisecond)
	if a := c.anchorLocked(); !a.Equal(last) {
		t.Errorf("%d cells 50 ms apart: anchor %v, want the last one", checkBulkCells, a)
	}
	c.heard = last.Add(time.Second) // a PONG after it
	if a := c.anchorLocked(); !a.IsZero() {
		t.Error("a burst followed by an answer still anchors a check")
	}
	c = tunnelCheck{}
	heard(&c, checkBulkCells, 200*time.Millisecond)
	if a := c.anchorLocked(); !a.IsZero() {
		t.Errorf("%d cells over %v made a burst", checkBulkCells, 9*200*time.Millisecond)
	}
	c.firstFwd = at // trigger A: the earlier of the two
	if a := c.anchorLocked(); !a.Equal(at) {
		t.Errorf("anchor %v, want the first unanswered DATA sent", a)
	}
}

func TestTunnelCheckOptions(t *testing.T) {
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	base := func() Options {
		return Options{Identity: id, Transport: transporttest.NewNetwork().NewTransport(), Listen: addrOf(0),
			Discovery: newListDiscovery(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	for _, tt := range []struct {
		name  string
		tweak func(o *Options)
		want  string
	}{
		{"TunnelQuiet short", func(o *Options) { o.TunnelQuiet = 50 * time.Millisecond }, "TunnelQuiet"},
		{"TunnelQuiet negative", func(o *Options) { o.TunnelQuiet = -time.Second }, "TunnelQuiet"},
		{"TunnelCheckTimeout", func(o *Options) { o.TunnelCheckTimeout = time.Millisecond }, "TunnelCheckTimeout"},
	} {
		o := base()
		tt.tweak(&o)
		if _, err := New(o); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want ErrOptions naming %q", tt.name, err, tt.want)
		}
	}
	n, err := New(base())
	if err != nil {
		t.Fatal(err)
	}
	if n.opts.TunnelQuiet != 2*time.Second || n.opts.TunnelCheckTimeout != 1500*time.Millisecond {
		t.Errorf("defaults %v %v, want 2s 1.5s", n.opts.TunnelQuiet, n.opts.TunnelCheckTimeout)
	}
}

// BenchmarkTunnelCheckNote is what the check adds to every DATA cell:
// one noteSent on the way out and one noteHeard on the way back.
func BenchmarkTunnelCheckNote(b *testing.B) {
	t := &Tunnel{n: &Node{opts: Options{Clock: clock.Real{}}}, length: 3}
	for b.Loop() {
		t.noteSent(onion.CmdData)
		t.noteHeard(2, onion.CmdData)
	}
}

// On a shaped link a check's cells take padding's place: the client's
// link to the tunnel's first hop sends as many frames in a window that
// holds a check as in one that does not (PING cells are queued like
// data, and the shaper sends queued cells instead of padding).
func TestTunnelCheckShapedTakesPaddingsPlace(t *testing.T) {
	synctest.Test(t, testTunnelCheckShapedTakesPaddingsPlace)
}

func testTunnelCheckShapedTakesPaddingsPlace(t *testing.T) {
	const rate = 20.0 // frames a second on every link
	cn := startCheckNetWith(t, func(i int, o *Options) { o.Cover = covertest.New(100*time.Millisecond, rate) })
	src := cn.nodes[0]
	tun, _ := cn.openFlow(t)
	cn.vc.sleep(3 * chkQuiet) // a check for openFlow's unanswered packets ends
	first, circ := tun.hopIDs()[0], tun.circID()
	var frames, cells atomic.Int64
	f := func(to identity.ID, pl []byte) {
		if to != first {
			return
		}
		frames.Add(1)
		if pl[0] == kindRelayFwd && circOf(pl) == circ {
			cells.Add(1)
		}
	}
	cn.taps[src.id].sending.Store(&f)
	const window = 6 * time.Second
	cn.vc.sleep(window)
	baseFrames, baseCells := frames.Swap(0), cells.Swap(0)
	checks := src.Stat(EventTunnelChecks)

	pkt := udpPacket(chkCli, chkSrv, []byte("anyone there?"))
	cn.client.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: 7})
	cn.vc.sleep(window)
	gotFrames, gotCells := frames.Load(), cells.Load()
	if n := src.Stat(EventTunnelChecks) - checks; n != 1 {
		t.Fatalf("%d checks in the window after an unanswered packet, want 1", n)
	}
	hops := int64(len(tun.hopIDs()))
	if baseCells != 0 || gotCells != 1+hops {
		t.Fatalf("cells on the circuit: %d in the quiet window, %d in the check's; want 0 and %d (the packet and a ping per hop)",
			baseCells, gotCells, 1+hops)
	}
	t.Logf("frames to hop 1 in %v: %d quiet, %d with the packet and the check", window, baseFrames, gotFrames)
	// Sent on top of the padding they would be 1+hops frames more; the
	// shaper's rate is exact in virtual time, up to a grid step at each
	// end of a window.
	if d := gotFrames - baseFrames; d < -1 || d > 1 {
		t.Errorf("the window with the check sent %d frames more than the quiet one; want the same count (cells in padding's place)", d)
	}
}
