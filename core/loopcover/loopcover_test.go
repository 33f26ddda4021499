package loopcover

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/covertest"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// loopPolicy is a policy that leaves links unshaped and asks for loops
// at rate per second.
func loopPolicy(rate float64) cover.Policy {
	p := covertest.New(50*time.Millisecond, 0)
	p.SetLoopRate(rate)
	return p
}

func loopCounts(n *node.Node) (sent, returned, lost uint64) {
	return n.Stat(EventLoopsSent), n.Stat(EventLoopsReturned), n.Stat(EventLoopsLost)
}

// noLoops is a cover policy without cover.Looper: it shapes every link
// at rate and asks for no loops.
type noLoops float64

func (f noLoops) Name() string            { return "fixed" }
func (f noLoops) Interval() time.Duration { return 50 * time.Millisecond }
func (f noLoops) Close() error            { return nil }
func (f noLoops) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	out := make([]cover.Target, len(links))
	for i := range out {
		out[i].Rate = float64(f)
	}
	return out, nil
}

// A policy asking for 20 loops per second gets them: two 3-hop loop
// tunnels, loops at about that rate, (nearly) all back, counted in the
// node's stats with a median round trip. Policies that ask for none, by
// rate 0 or by not implementing cover.Looper, get none. Every goroutine
// stops with the node.
func TestLoopCover(t *testing.T) { synctest.Test(t, testLoopCover) }

func testLoopCover(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const rate = 20.0
	tn := startLoopNet(t, 10, 3, func(i int, o *node.Options) {
		switch i {
		case 0:
			o.Cover = loopPolicy(rate)
		case 1:
			o.Cover = loopPolicy(0)
		case 2:
			o.Cover = noLoops(0) // no cover.Looper
		}
	})
	src, lp := tn.Nodes[0], tn.probers[0]
	nodetest.WaitFor(t, "two loop tunnels", 30*time.Second, func() bool { return len(lp.Tunnels()) == 2 })
	for _, hops := range lp.Tunnels() {
		if len(hops) != 3 {
			t.Errorf("loop tunnel of %d hops, want 3", len(hops))
		}
		if slices.Contains(hops, src.ID()) {
			t.Errorf("loop tunnel through its own node: %v", hops)
		}
	}

	sent0 := src.Stat(EventLoopsSent)
	began := time.Now()
	nodetest.WaitFor(t, "60 more loops sent", 30*time.Second, func() bool { return src.Stat(EventLoopsSent) >= sent0+60 })
	perSec := float64(src.Stat(EventLoopsSent)-sent0) / time.Since(began).Seconds()
	// Settle every loop sent so far: back, or lost after LoopTimeout.
	sent := src.Stat(EventLoopsSent)
	nodetest.WaitFor(t, "loops settled", 30*time.Second, func() bool {
		_, ret, lost := loopCounts(src)
		return ret+lost >= sent
	})
	_, returned, lost := loopCounts(src)
	rtt, samples := lp.RTT()
	st := tn.status(0)
	t.Logf("%.1f loops/s; sent %d, returned %d, lost %d; median RTT %v over %d; loop tunnels built %d",
		perSec, sent, returned, lost, rtt, samples, st.Counters[EventLoopTunnelsBuilt])
	if perSec < rate/3 || perSec > rate*2 {
		t.Errorf("%.1f loops per second, want about %v", perSec, rate)
	}
	if lost > sent/20 {
		t.Errorf("%d of %d loops lost on a healthy network", lost, sent)
	}
	if rtt <= 0 || rtt >= lp.opts.Timeout || samples == 0 {
		t.Errorf("median loop RTT %v over %d loops, want in (0, %v)", rtt, samples, lp.opts.Timeout)
	}
	if st.LoopRTT <= 0 {
		t.Errorf("Status().LoopRTT = %v", st.LoopRTT)
	}
	if len(st.LoopTunnels) != 2 || len(st.LoopTunnels[0]) != 3 || len(st.LoopTunnels[1]) != 3 {
		t.Errorf("Status().LoopTunnels = %v, want two of 3 hops", st.LoopTunnels)
	}
	for _, name := range []string{EventLoopsSent, EventLoopsReturned, EventLoopTunnelsBuilt} {
		if st.Counters[name] == 0 {
			t.Errorf("status counter %s = 0", name)
		}
	}
	if st.Counters[EventLoopAlerts] != 0 {
		t.Errorf("%d loop alerts on a healthy network", st.Counters[EventLoopAlerts])
	}

	for i, n := range tn.Nodes[1:3] {
		sent, ret, lost := loopCounts(n)
		if sent+ret+lost+n.Stat(EventLoopTunnelsBuilt) != 0 || n.Status().Tunnels != 0 {
			t.Errorf("node %d (policy without loops): sent %d, returned %d, lost %d, %d loop tunnels, %d own tunnels",
				i+1, sent, ret, lost, n.Stat(EventLoopTunnelsBuilt), n.Status().Tunnels)
		}
		if rtt, _ := tn.probers[i+1].RTT(); rtt != 0 {
			t.Errorf("node %d: loop RTT %v without loops", i+1, rtt)
		}
	}
	tn.Close()
}

// dropTransport loses what its node sends: the data frames to the
// address in to (set at any time; nil: none), and every packet match
// reports (nil: none).
type dropTransport struct {
	transport.Transport
	to      atomic.Pointer[netip.AddrPort]
	match   func(transport.Packet) bool
	dropped atomic.Int64
}

func (d *dropTransport) WriteBatch(pkts []transport.Packet) error {
	to := d.to.Load()
	if to == nil && d.match == nil {
		return d.Transport.WriteBatch(pkts)
	}
	keep := make([]transport.Packet, 0, len(pkts))
	for _, p := range pkts {
		if (to != nil && p.Addr == *to && p.N == link.FrameSize && p.Buf[0] == link.TypeData) || (d.match != nil && d.match(p)) {
			d.dropped.Add(1)
			continue
		}
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		return nil
	}
	return d.Transport.WriteBatch(keep)
}

// An active attacker: the middle relay of one loop tunnel starts dropping
// what it forwards to the next hop. The node's loops through it are lost,
// the alert fires, and the loop tunnels are rebuilt through other hops,
// where the loops come back again.
func TestLoopCoverDetectsDroppingRelay(t *testing.T) {
	synctest.Test(t, testLoopCoverDetectsDroppingRelay)
}

func testLoopCoverDetectsDroppingRelay(t *testing.T) {
	// 16 nodes choosing 4 mimics each: after an alert the node avoids
	// every hop of the lost loops (up to six when the dropping relay sat
	// on both loop tunnels), and a smaller view often had no path left
	// that avoided them all, so the rebuild went back through the relay.
	drops := make([]*dropTransport, 16)
	tn := startLoopNet(t, 16, 4, func(i int, o *node.Options) {
		drops[i] = &dropTransport{Transport: o.Transport}
		o.Transport = drops[i]
		// The dropped link must not time out (and repair the tunnel)
		// before the loops notice.
		o.LinkTimeout = 5 * time.Minute
		if i == 0 {
			o.Cover = loopPolicy(20)
		}
	})
	src, lp := tn.Nodes[0], tn.probers[0]
	nodetest.WaitFor(t, "two loop tunnels and 20 returned loops", 30*time.Second, func() bool {
		return len(lp.Tunnels()) == 2 && src.Stat(EventLoopsReturned) >= 20
	})
	path := lp.Tunnels()[0]
	relay, next := path[1], path[2]
	var ri int
	for i, n := range tn.Nodes {
		if n.ID() == relay {
			ri = i
		}
	}
	_, _, lost0 := loopCounts(src)
	attack := time.Now()
	to := tn.ByID(next).Addr()
	drops[ri].to.Store(&to)
	t.Logf("relay %s (hop 2 of %s) drops everything it sends to %s", relay.Short(), shorts(path), next.Short())

	nodetest.WaitFor(t, "the loop alert", 60*time.Second, func() bool { return src.Stat(EventLoopAlerts) > 0 })
	alertAfter := time.Since(attack)
	sent, ret, lost := loopCounts(src)
	t.Logf("alert %v after the attack began; sent %d, returned %d, lost %d (%d since the attack); relay dropped %d frames",
		alertAfter.Round(time.Millisecond), sent, ret, lost, lost-lost0, drops[ri].dropped.Load())
	if lost <= lost0 {
		t.Errorf("loops lost %d, before the attack %d: want more", lost, lost0)
	}

	// Rebuilt through other hops, and loops come back again.
	defer func() {
		if t.Failed() {
			lc := lp
			lc.mu.Lock()
			var sus []string
			for h := range lc.suspects {
				sus = append(sus, h.Short())
			}
			lc.mu.Unlock()
			var now []string
			for _, h := range lp.Tunnels() {
				now = append(now, shorts(h))
			}
			sent, ret, lost := loopCounts(src)
			t.Logf("at failure: loop tunnels %v; suspects %v; built %d; alerts %d; sent %d, returned %d, lost %d",
				now, sus, src.Stat(EventLoopTunnelsBuilt), src.Stat(EventLoopAlerts), sent, ret, lost)
		}
	}()
	nodetest.WaitFor(t, "two loop tunnels avoiding the relay", 30*time.Second, func() bool {
		hops := lp.Tunnels()
		if len(hops) != 2 {
			return false
		}
		for _, h := range hops {
			if slices.Contains(h, relay) {
				return false
			}
		}
		return true
	})
	ret1 := src.Stat(EventLoopsReturned)
	nodetest.WaitFor(t, "20 loops back through the new tunnels", 30*time.Second, func() bool {
		return src.Stat(EventLoopsReturned) >= ret1+20
	})
	var now []string
	for _, h := range lp.Tunnels() {
		now = append(now, shorts(h))
	}
	sent, ret, lost = loopCounts(src)
	rtt, _ := lp.RTT()
	t.Logf("loop tunnels now %v; sent %d, returned %d, lost %d; alerts %d; median RTT %v; %.1fs after the attack",
		now, sent, ret, lost, src.Stat(EventLoopAlerts), rtt, time.Since(attack).Seconds())
}

func shorts(ids []identity.ID) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ">"
		}
		s += id.Short()
	}
	return s
}

// A policy's loop rate and the loop options are checked when loop cover
// is made.
func TestLoopOptionsChecked(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tweak func(o *Options)
		want  string
	}{
		{"NaN loop rate", func(o *Options) { o.Cover = loopPolicy(math.NaN()) }, "loops per second"},
		{"negative loop rate", func(o *Options) { o.Cover = loopPolicy(-1) }, "loops per second"},
		{"infinite loop rate", func(o *Options) { o.Cover = loopPolicy(math.Inf(1)) }, "loops per second"},
		{"Timeout", func(o *Options) { o.Timeout = -time.Second }, "Timeout"},
		{"Tunnels", func(o *Options) { o.Tunnels = 17 }, "Tunnels"},
		{"Window", func(o *Options) { o.Window = -1 }, "Window"},
		{"AlertLoss", func(o *Options) { o.AlertLoss = 1.5 }, "AlertLoss"},
	} {
		var o Options
		tt.tweak(&o)
		_, err := New(o)
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want ErrOptions naming %q", tt.name, err, tt.want)
		}
	}
	n, err := New(Options{Cover: loopPolicy(20)})
	if err != nil {
		t.Fatal(err)
	}
	if n.rate != 20 || n.opts.Timeout != 5*time.Second || n.opts.Tunnels != 2 || n.opts.Window != 20 || n.opts.AlertLoss != 0.5 {
		t.Errorf("loop rate %v, defaults %v %d %d %v; want 20, 5s 2 20 0.5",
			n.rate, n.opts.Timeout, n.opts.Tunnels, n.opts.Window, n.opts.AlertLoss)
	}
}

// On shaped links loop cells are data cells: they take the place of
// padding, and each link still sends its rate, no more.
func TestLoopCoverShapedTakesPaddingsPlace(t *testing.T) {
	synctest.Test(t, testLoopCoverShapedTakesPaddingsPlace)
}

func testLoopCoverShapedTakesPaddingsPlace(t *testing.T) {
	const rate = 100.0
	var pol *covertest.Policy
	tn := startLoopNet(t, 8, 2, func(i int, o *node.Options) {
		// Evenly paced, so that each link's count is its rate times the
		// time, not a Poisson draw whose spread (±6 % over 3 s) would
		// hide the few frames per second loops would add on top.
		p := covertest.New(50*time.Millisecond, rate)
		if i == 0 {
			p.SetLoopRate(20)
			pol = p
		}
		o.Cover = p
	})
	src, lp := tn.Nodes[0], tn.probers[0]
	nodetest.WaitFor(t, "40 loops back over shaped links", 30*time.Second, func() bool { return src.Stat(EventLoopsReturned) >= 40 })
	from := len(pol.Ticks())
	sent0 := src.Stat(EventLoopsSent)
	nodetest.WaitFor(t, "3 s of ticks", 30*time.Second, func() bool {
		ts := pol.Ticks()
		return len(ts) > from+1 && ts[len(ts)-1].Now.Sub(ts[from].Now) >= 3*time.Second
	})
	loops := src.Stat(EventLoopsSent) - sent0
	ts := pol.Ticks()[from+1:] // each tick reports the interval before it
	secs := ts[len(ts)-1].Now.Sub(pol.Ticks()[from].Now).Seconds()
	type sum struct{ data, cover uint64 }
	per := map[string]*sum{}
	var data uint64
	for _, tk := range ts {
		for _, l := range tk.Links {
			s := per[l.Peer]
			if s == nil {
				s = &sum{}
				per[l.Peer] = s
			}
			s.data += l.DataSent
			s.cover += l.CoverSent
			data += l.DataSent
		}
	}
	rtt, _ := lp.RTT()
	t.Logf("%.1fs: %d loops sent, %d data frames on %d links, median loop RTT %v", secs, loops, data, len(per), rtt)
	if data < loops/2 {
		t.Errorf("%d data frames for %d loops: loop cells are not going out as data", data, loops)
	}
	for peer, s := range per {
		got := float64(s.data+s.cover) / secs
		t.Logf("link %s: %.1f frames/s (%d data, %d padding)", peer, got, s.data, s.cover)
		// Shaping keeps each link at its rate; a loop adds no frame (20
		// loops/s added on top would put about 7 more frames a second on
		// each of the three links). The lower bound is wide: a loaded
		// machine's late grid ticks are capped, not made up in full.
		if got < 0.6*rate || got > 1.04*rate {
			t.Errorf("link %s: %.1f frames/s, want about %v whatever the loops", peer, got, rate)
		}
	}
}

// Every hop of a lost loop becomes a suspect; those that also carried
// loops that came back in the same window (an entry or exit shared with a
// healthy loop tunnel, or a relay dropping selectively) are the first let
// back when no path avoids all suspects (buildTunnels).
func TestLoopSuspectsMarkHopsThatReturnedLoops(t *testing.T) {
	id := func(b byte) identity.ID { return identity.ID{b} }
	entry, bad, good, exit := id(1), id(2), id(3), id(4)
	for _, tc := range []struct {
		name     string
		lostVia  []identity.ID
		backVia  []identity.ID
		lostOnly []identity.ID
	}{
		{"shared entry and exit", []identity.ID{entry, bad, exit}, []identity.ID{entry, good, exit}, []identity.ID{bad}},
		{"disjoint tunnels", []identity.ID{entry, bad, exit}, []identity.ID{good}, []identity.ID{entry, bad, exit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Prober{}
			n.opts.Window, n.opts.AlertLoss = 4, 0.5
			n.suspects = map[identity.ID]time.Time{}
			n.lostOnly = map[identity.ID]bool{}
			now := time.Unix(1000, 0)
			var a *loopAlert
			for i, lost := range []bool{false, true, false, true} {
				hops := tc.backVia
				if lost {
					hops = tc.lostVia
				}
				a = n.settleLocked(&pendingLoop{hops: hops}, lost, now.Add(time.Duration(i)*time.Second))
			}
			if a == nil {
				t.Fatal("no alert after 2 of 4 loops were lost")
			}
			var suspects, lostOnly []identity.ID
			for h := range n.suspects {
				suspects = append(suspects, h)
				if n.lostOnly[h] {
					lostOnly = append(lostOnly, h)
				}
			}
			order := func(x, y identity.ID) int { return int(x[0]) - int(y[0]) }
			slices.SortFunc(suspects, order)
			slices.SortFunc(lostOnly, order)
			want := slices.Clone(tc.lostVia)
			slices.SortFunc(want, order)
			if !slices.Equal(suspects, want) {
				t.Errorf("suspects %v, want every hop of the lost loops %v", suspects, want)
			}
			if !slices.Equal(lostOnly, tc.lostOnly) {
				t.Errorf("suspects whose loops never came back %v, want %v", lostOnly, tc.lostOnly)
			}
		})
	}
}
