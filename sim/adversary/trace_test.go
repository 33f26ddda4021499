package adversary

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBuilderSeries(t *testing.T) {
	b := NewBuilder(3, synthBin)
	for range 300 { // more than one word holds
		b.Add(0, 1, 25*time.Millisecond, 47*time.Millisecond, 1408)
	}
	b.Add(0, 1, 31*time.Millisecond, -1, 100) // lost
	b.Add(2, 0, 0, 5*time.Millisecond, 50)
	tr := b.Trace()
	if tr.Nodes() != 3 || tr.Bins() != 5 || tr.Bin() != synthBin || tr.Frames() != 302 || tr.Bytes() != 300*1408+150 {
		t.Fatalf("nodes %d bins %d frames %d bytes %d", tr.Nodes(), tr.Bins(), tr.Frames(), tr.Bytes())
	}
	links := tr.Links()
	if len(links) != 2 || links[0].Src != 0 || links[0].Dst != 1 || links[1].Src != 2 {
		t.Fatalf("links %+v", links)
	}
	l := links[0]
	if l.Frames != 301 || l.Sent.Total() != 301 || l.Arrived.Total() != 300 || l.Arrived.Len() != 2 {
		t.Errorf("link 0→1: frames %d sent %d arrived %d (%d words)", l.Frames, l.Sent.Total(), l.Arrived.Total(), l.Arrived.Len())
	}
	var bins []int
	l.Sent.Each(func(bin, count int) { bins = append(bins, bin, count) })
	if !slices.Equal(bins, []int{2, 300, 3, 1}) {
		t.Errorf("Each: %v, want bin 2 ×300, bin 3 ×1", bins)
	}
	if !slices.Equal(tr.Out(0), []uint32{0, 0, 300, 1, 0}) || !slices.Equal(tr.In(1), []uint32{0, 0, 0, 0, 300}) ||
		!slices.Equal(tr.In(0), []uint32{1, 0, 0, 0, 0}) || !slices.Equal(l.Arrived.Dense(5), tr.In(1)) {
		t.Errorf("out(0) %v in(1) %v in(0) %v", tr.Out(0), tr.In(1), tr.In(0))
	}
	if len(tr.OutLinks(0)) != 1 || len(tr.InLinks(0)) != 1 || tr.InLinks(0)[0].Src != 2 || tr.BinOf(25*time.Millisecond) != 2 {
		t.Errorf("per-node links or BinOf wrong")
	}
}

func TestBuilderOrderIndependent(t *testing.T) {
	type obs struct {
		s, d          int
		sent, arrived time.Duration
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []obs
	for range 5000 {
		s := rng.IntN(6)
		sent := time.Duration(rng.IntN(2000)) * time.Millisecond
		all = append(all, obs{s, (s + 1 + rng.IntN(5)) % 6, sent, sent + time.Duration(rng.IntN(50))*time.Millisecond})
	}
	build := func(list []obs) *Trace {
		b := NewBuilder(6, synthBin)
		for _, o := range list {
			b.Add(o.s, o.d, o.sent, o.arrived, 1408)
		}
		return b.Trace()
	}
	a := build(all)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	b := build(all)
	if a.Bins() != b.Bins() || len(a.Links()) != len(b.Links()) {
		t.Fatalf("shapes differ")
	}
	for i, l := range a.Links() {
		m := b.Links()[i]
		if l.Src != m.Src || l.Dst != m.Dst || l.Frames != m.Frames || !slices.Equal(l.Sent.runs, m.Sent.runs) || !slices.Equal(l.Arrived.runs, m.Arrived.runs) {
			t.Fatalf("link %d differs with the order of observations", i)
		}
	}
	for v := range 6 {
		if !slices.Equal(a.Out(v), b.Out(v)) || !slices.Equal(a.In(v), b.In(v)) {
			t.Fatalf("node %d series differ", v)
		}
	}
}

func TestBuilderDropsAndLimit(t *testing.T) {
	b := NewBuilder(2, synthBin)
	b.SetLimit(time.Second)
	got := []bool{
		b.Add(0, 1, 0, synthBin, 1),
		b.Add(0, 2, 0, synthBin, 1),                 // no node 2
		b.Add(-1, 1, 0, synthBin, 1),                // no node -1
		b.Add(0, 1, -time.Millisecond, synthBin, 1), // before the origin
		b.Add(0, 1, time.Second, time.Second, 1),    // at the limit
	}
	if !slices.Equal(got, []bool{true, false, false, false, false}) {
		t.Errorf("Add results %v", got)
	}
	b.Add(0, 1, 990*time.Millisecond, 2*time.Second, 1) // arrives after the limit: counted as lost
	if b.Dropped() != 4 {
		t.Errorf("dropped %d, want 4", b.Dropped())
	}
	tr := b.Trace()
	if tr.Frames() != 2 || tr.Bins() != 100 || slices.Max(tr.In(1)) != 1 {
		t.Errorf("frames %d bins %d", tr.Frames(), tr.Bins())
	}
}

func TestIndexObserve(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:7000")
	c := netip.MustParseAddrPort("10.0.0.2:7000")
	if _, err := NewIndex(time.Now(), []netip.AddrPort{a, a}); err == nil {
		t.Errorf("duplicate address accepted")
	}
	origin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x, err := NewIndex(origin, []netip.AddrPort{a, c})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := x.ID(c); !ok || id != 1 || x.Addr(0) != a || x.Len() != 2 || x.Origin() != origin {
		t.Fatalf("index lookups wrong")
	}
	b := NewBuilder(x.Len(), synthBin)
	b.Observe(x, a, c, origin.Add(15*time.Millisecond), origin.Add(37*time.Millisecond), 1408)
	b.Observe(x, c, a, origin.Add(15*time.Millisecond), time.Time{}, 1408) // lost
	if b.Observe(x, a, netip.MustParseAddrPort("10.0.0.3:7000"), origin, origin, 1) || b.Dropped() != 1 {
		t.Errorf("an unknown address was recorded")
	}
	tr := b.Trace()
	if tr.Out(0)[1] != 1 || tr.In(1)[3] != 1 || tr.Out(1)[1] != 1 || slices.Max(tr.In(0)) != 0 {
		t.Errorf("out(0) %v in(1) %v out(1) %v in(0) %v", tr.Out(0), tr.In(1), tr.Out(1), tr.In(0))
	}
}

func TestBuilderConcurrent(t *testing.T) {
	b := NewBuilder(8, synthBin)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				b.Add(g, (g+1)%8, time.Duration(i)*time.Millisecond, time.Duration(i+20)*time.Millisecond, 1408)
			}
		})
	}
	done := make(chan *Trace)
	go func() { done <- b.Trace() }() // a snapshot while recording
	wg.Wait()
	<-done
	tr := b.Trace()
	for v := range 8 {
		if sum32(tr.Out(v), 0, tr.Bins()) != 1000 || sum32(tr.In(v), 0, tr.Bins()) != 1000 {
			t.Errorf("node %d: out %d in %d, want 1000", v, sum32(tr.Out(v), 0, tr.Bins()), sum32(tr.In(v), 0, tr.Bins()))
		}
	}
}

func TestBuilderAddN(t *testing.T) {
	a, b := NewBuilder(2, synthBin), NewBuilder(2, synthBin)
	for _, k := range []int{3, 300, 1, 0, 600} {
		for range k {
			a.Add(0, 1, 5*time.Millisecond, 25*time.Millisecond, 100)
		}
		b.AddN(0, 1, 5*time.Millisecond, 25*time.Millisecond, 100, k)
	}
	b.AddN(0, 2, 0, 0, 1, 7)
	ta, tb := a.Trace(), b.Trace()
	la, lb := ta.Links()[0], tb.Links()[0]
	if la.Frames != 904 || la.Frames != lb.Frames || la.Bytes != lb.Bytes ||
		!slices.Equal(la.Sent.runs, lb.Sent.runs) || !slices.Equal(la.Arrived.runs, lb.Arrived.runs) || b.Dropped() != 7 {
		t.Errorf("AddN differs from repeated Add: %+v vs %+v, dropped %d", la, lb, b.Dropped())
	}
}
