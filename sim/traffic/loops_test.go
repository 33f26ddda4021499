package traffic

import (
	"net/netip"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/plugins/cover/poisson"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// looper leaves every link unshaped (rate 0) and asks for loops; it adds
// up the LinkStats the model gives it.
type looper struct {
	rate  float64
	stats *cover.LinkStats // totals over every node and tick
}

func (looper) Name() string            { return "looper" }
func (looper) Interval() time.Duration { return 100 * time.Millisecond }
func (looper) Close() error            { return nil }
func (p looper) Loops() cover.Loops    { return cover.Loops{Rate: p.rate} }
func (p looper) Tick(_ time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	for _, l := range links {
		p.stats.DataSent += l.DataSent
		p.stats.CoverSent += l.CoverSent
		p.stats.DataRecv += l.DataRecv
	}
	return make([]cover.Target, len(links)), nil
}

func poissonLoops(rate, loopRate float64) func(int) (cover.Policy, error) {
	return func(int) (cover.Policy, error) {
		return poisson.New(map[string]string{
			"rate":      strconv.FormatFloat(rate, 'g', -1, 64),
			"loop_rate": strconv.FormatFloat(loopRate, 'g', -1, 64),
		})
	}
}

// linkSet is the directed links of the loop tunnels, both ways.
func loopLinks(paths [][]int) map[[2]int]bool {
	out := map[[2]int]bool{}
	for _, p := range paths {
		for i := 0; i+1 < len(p); i++ {
			out[[2]int{p[i], p[i+1]}] = true
			out[[2]int{p[i+1], p[i]}] = true
		}
	}
	return out
}

// Every node whose policy asks for loops gets two loop tunnels by the path
// rule (no two hops, nor the sender, in one /16) and sends loops at about
// its rate; they come back, after at least a link latency on each of the
// six links; and loop cells are not workload: no flows, no goodput, no
// data frames, no drops.
func TestLoopsSentAtRateAndReturn(t *testing.T) {
	cfg := small()
	cfg.Workload.Rate = 0
	cfg.Policy = poissonLoops(60, 5)
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lp := r.Loops
	if lp.Nodes != cfg.Nodes || lp.Tunnels != LoopTunnels*cfg.Nodes || len(lp.Paths) != lp.Tunnels {
		t.Fatalf("%d loop nodes, %d loop tunnels (%d paths): want %d and %d", lp.Nodes, lp.Tunnels, len(lp.Paths), cfg.Nodes, LoopTunnels*cfg.Nodes)
	}
	for i, p := range lp.Paths {
		if len(p) != 1+3 || p[0] != i/LoopTunnels {
			t.Fatalf("loop tunnel %d: %v, want node %d and 3 hops", i, p, i/LoopTunnels)
		}
		seen := map[netip.Prefix]bool{}
		for _, v := range p {
			top := domain.Top(netip.MustParseAddr(r.Addrs[v]))
			if seen[top] {
				t.Fatalf("loop tunnel %v has two nodes in %v", p, top)
			}
			seen[top] = true
		}
	}
	want := 5 * float64(cfg.Nodes) * cfg.Duration.Seconds()
	if s := float64(lp.Sent); s < 0.9*want || s > 1.1*want {
		t.Errorf("%d loops sent in %v by %d nodes at 5/s, want about %.0f", lp.Sent, cfg.Duration, cfg.Nodes, want)
	}
	// Those sent in the last round trip or so are still out.
	if lp.Lost != 0 || lp.Returned > lp.Sent || lp.Returned < lp.Sent-uint64(float64(cfg.Nodes)*5*0.5) {
		t.Errorf("%d loops sent, %d returned, %d lost: want all but the last half second's back", lp.Sent, lp.Returned, lp.Lost)
	}
	if len(lp.RTTs) != int(lp.Returned) {
		t.Fatalf("%d round trips for %d returned loops", len(lp.RTTs), lp.Returned)
	}
	for _, rtt := range lp.RTTs {
		if rtt < 6*20*time.Millisecond || rtt > LoopTimeout {
			t.Fatalf("loop round trip %v: want at least six link latencies and at most %v", rtt, LoopTimeout)
		}
	}
	// Six cells a loop, less those at the edges of the flow period.
	if f := float64(lp.Frames); f < 0.95*6*float64(lp.Sent) || f > 1.05*6*float64(lp.Sent) {
		t.Errorf("%d loop frames for %d loops: want six each", lp.Frames, lp.Sent)
	}
	if r.DataFrames != 0 || r.Delivered != 0 || len(r.Latencies) != 0 || r.Dropped != 0 || r.Utilisation != 0 {
		t.Errorf("no workload, yet data frames %d, delivered %d, latencies %d, dropped %d, utilisation %g: loops counted as workload",
			r.DataFrames, r.Delivered, len(r.Latencies), r.Dropped, r.Utilisation)
	}
	for _, f := range r.Flows {
		if len(f.Up)+len(f.Down) != 0 {
			t.Fatalf("flow of %d: %d packets at the exit with no workload", f.Initiator, len(f.Up)+len(f.Down))
		}
	}
	if len(r.Flows) != cfg.Initiators || len(r.Initiators) != cfg.Initiators {
		t.Errorf("%d flows, %d initiators, want %d: loop tunnels are not flows", len(r.Flows), len(r.Initiators), cfg.Initiators)
	}
}

// On links poisson shapes, a loop cell takes a slot that would have been
// padding: the wire is the same frame for frame with and without loops
// (the loops draw from a generator of their own), padding falls by the
// loop frames, and the workload's flows, initiators and paths are the
// same.
func TestLoopsTakePaddingSlots(t *testing.T) {
	run := func(loopRate float64) (*Result, linkLog) {
		cfg := small()
		cfg.Policy = poissonLoops(60, loopRate)
		return runLogged(t, cfg)
	}
	a, la := run(0)
	b, lb := run(5)
	if a.Loops.Sent != 0 || a.Loops.Frames != 0 || a.Loops.Nodes != 0 {
		t.Fatalf("loop_rate 0 sent loops: %+v", a.Loops)
	}
	if b.Loops.Sent == 0 || b.Loops.Returned == 0 {
		t.Fatalf("loop_rate 5: %+v", b.Loops)
	}
	if a.Frames != b.Frames || !reflect.DeepEqual(la, lb) {
		t.Fatalf("frames %d without loops, %d with: on shaped links loops must not change the wire", a.Frames, b.Frames)
	}
	if !reflect.DeepEqual(a.Initiators, b.Initiators) || a.Offered != b.Offered {
		t.Fatalf("initiators %v / %v, offered %d / %d: loops changed the workload", a.Initiators, b.Initiators, a.Offered, b.Offered)
	}
	for i := range a.Flows {
		if !reflect.DeepEqual(a.Flows[i].Path, b.Flows[i].Path) {
			t.Fatalf("flow %d: path %v without loops, %v with", i, a.Flows[i].Path, b.Flows[i].Path)
		}
	}
	padA := a.Frames - a.DataFrames
	padB := b.Frames - b.DataFrames - b.Loops.Frames
	// The workload's data frames move a little (loops delay some), so
	// allow a small difference.
	if d := float64(padA) - float64(padB); d < 0.95*float64(b.Loops.Frames) || d > 1.05*float64(b.Loops.Frames) {
		t.Errorf("padding %d without loops, %d with %d loop frames: want it lower by the loop frames", padA, padB, b.Loops.Frames)
	}
	if b.Frames != b.DataFrames+b.Loops.Frames+padB || b.DataFrames == 0 {
		t.Errorf("frames %d = data %d + loops %d + padding %d?", b.Frames, b.DataFrames, b.Loops.Frames, padB)
	}
}

// On unshaped links a loop cell is an extra frame; it crosses the links of
// its loop tunnel out and back and no others; the policies see loop cells
// as data in their LinkStats (as the core counts pings); and loop frames
// are neither the workload's data frames, its cleartext, its latencies
// nor its goodput.
func TestLoopsUnshaped(t *testing.T) {
	// One node loops, on a network with no workload: every frame on the
	// wire is one of its loops.
	var stats cover.LinkStats
	cfg := small()
	cfg.Workload.Rate = 0
	cfg.Policy = func(i int) (cover.Policy, error) {
		if i == 7 {
			return looper{rate: 10, stats: &stats}, nil
		}
		return looper{stats: &stats}, nil
	}
	r, lg := runLogged(t, cfg)
	if r.Loops.Nodes != 1 || len(r.Loops.Paths) != LoopTunnels || r.Loops.Sent == 0 {
		t.Fatalf("loops: %+v", r.Loops)
	}
	on := loopLinks(r.Loops.Paths)
	var total int
	for k, s := range lg.sent {
		if !on[k] {
			t.Errorf("link %v carried %d frames and is on no loop tunnel", k, len(s))
		}
		total += len(s)
	}
	for k := range on {
		if len(lg.sent[k]) == 0 {
			t.Errorf("loop tunnel link %v carried nothing", k)
		}
	}
	if r.Frames != r.Loops.Frames || r.DataFrames != 0 {
		t.Errorf("frames %d, loop frames %d, data frames %d: on unshaped links with no workload every frame is a loop's", r.Frames, r.Loops.Frames, r.DataFrames)
	}
	// The policies were told every frame was data: no padding.
	if stats.CoverSent != 0 || stats.DataSent == 0 || stats.DataSent > uint64(total) || stats.DataSent < uint64(total)-20 {
		t.Errorf("policies saw %d data and %d padding frames sent, %d were on the wire: loop cells are data to them", stats.DataSent, stats.CoverSent, total)
	}
	// Unshaped: each of the six links costs its latency and jitter, and
	// the wait for the next grid step.
	const lat, jit = 20 * time.Millisecond, 2 * time.Millisecond // the defaults
	for _, rtt := range r.Loops.RTTs {
		if rtt < 6*lat || rtt > 6*(lat+jit+Grid) {
			t.Fatalf("round trip %v on idle unshaped links: want %v..%v", rtt, 6*lat, 6*(lat+jit+Grid))
		}
	}

	// Every node loops and the initiators send: the loops are extra
	// frames, the workload's numbers only the workload's.
	cfg = small()
	cfg.Policy = func(int) (cover.Policy, error) { return looper{rate: 5, stats: &stats}, nil }
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Loops.Frames == 0 || r.Frames != r.DataFrames+r.Loops.Frames {
		t.Fatalf("frames %d, data %d, loops %d: unshaped, every frame is data or a loop's", r.Frames, r.DataFrames, r.Loops.Frames)
	}
	up := 0
	for _, f := range r.Flows {
		up += len(f.Up)
	}
	if sent := int(r.Offered - r.Dropped); up > sent || up < sent-cfg.Initiators*10 {
		t.Errorf("servers got %d packets, initiators sent %d: loop cells reached the exits' cleartext", up, sent)
	}
	if got := r.Delivered / PayloadBytes; got != uint64(len(r.Latencies)) || got > r.Offered {
		t.Errorf("%d frames of payload delivered, %d latencies, %d offered", got, len(r.Latencies), r.Offered)
	}
	// Data frames per workload frame delivered: one per hop, as without
	// loops (TestAckEvery's measure).
	if per := float64(r.DataFrames) / float64(len(r.Latencies)); per < 2.9 || per > 3.1 {
		t.Errorf("%.2f data frames per delivered frame, want 3: loop frames counted as data", per)
	}
}

// Loops a full queue refuses, or that come back after LoopTimeout, are
// lost; so are those out longer than that when the run ends. A loop rate
// far beyond what the links' rate carries loses loops and keeps every
// counted round trip within the timeout; the workload's drop counter
// does not count them.
func TestLoopsLost(t *testing.T) {
	cfg := small()
	cfg.Workload.Rate = 0
	cfg.Queue = 8
	cfg.Policy = poissonLoops(4, 20) // 20 loops/s: 120 cells/s on ~12 links of 4 frames/s each
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lp := r.Loops
	if lp.Lost == 0 || lp.Returned == 0 || lp.Returned+lp.Lost > lp.Sent {
		t.Fatalf("sent %d, returned %d, lost %d: want some of each, and no more settled than sent", lp.Sent, lp.Returned, lp.Lost)
	}
	for _, rtt := range lp.RTTs {
		if rtt > LoopTimeout {
			t.Fatalf("round trip %v counted as returned, beyond the %v timeout", rtt, LoopTimeout)
		}
	}
	if r.Dropped != 0 {
		t.Errorf("%d workload frames dropped with no workload: loop cells counted", r.Dropped)
	}
}

// Loops keep a run reproducible: the same seed gives the same run, frame
// for frame, loops included.
func TestLoopsDeterministic(t *testing.T) {
	run := func() (*Result, linkLog) {
		cfg := small()
		cfg.Policy = poissonLoops(60, 10)
		return runLogged(t, cfg)
	}
	a, la := run()
	b, lb := run()
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(la, lb) {
		t.Fatal("two runs with loops and the same seed differ")
	}
	if a.Loops.Returned == 0 {
		t.Fatal("no loops returned")
	}
	// A bad loop rate is refused, not run.
	cfg := small()
	cfg.Policy = func(int) (cover.Policy, error) { return looper{rate: -1, stats: new(cover.LinkStats)}, nil }
	if _, err := Run(cfg); err == nil {
		t.Error("a negative loop rate was accepted")
	}
}

// A loop rate so small its gaps do not fit a Duration sends no loops, and
// the run ends.
func TestLoopsTinyRate(t *testing.T) {
	cfg := small()
	cfg.Policy = func(int) (cover.Policy, error) { return looper{rate: 1e-300, stats: new(cover.LinkStats)}, nil }
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Loops.Nodes != cfg.Nodes || r.Loops.Sent != 0 {
		t.Errorf("loops: %+v, want %d nodes that sent none", r.Loops, cfg.Nodes)
	}
}
