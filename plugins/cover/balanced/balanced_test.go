package balanced

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/covertest"
)

var _ cover.Factory = New

func newPolicy(t *testing.T, options map[string]string) cover.Policy {
	t.Helper()
	p, err := New(options)
	if err != nil {
		t.Fatalf("New(%v): %v", options, err)
	}
	return p
}

func tick(t *testing.T, p cover.Policy, links []cover.LinkStats) []float64 {
	t.Helper()
	ts, err := p.Tick(time.Now(), links)
	if err != nil || len(ts) != len(links) {
		t.Fatalf("Tick(%d links) = %v, %v", len(links), ts, err)
	}
	rates := make([]float64, len(ts))
	for i, tg := range ts {
		if tg.Poisson {
			t.Errorf("link %d: Poisson set; balanced paces evenly", i)
		}
		rates[i] = tg.Rate
	}
	return rates
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*max(1, math.Abs(b)) }

func sum(rs []float64) float64 {
	s := 0.0
	for _, r := range rs {
		s += r
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, spread := range []string{SpreadReciprocal, SpreadEven} {
		t.Run(spread, func(t *testing.T) {
			covertest.Run(t, func(t *testing.T) cover.Policy { return newPolicy(t, map[string]string{"spread": spread}) })
		})
	}
}

func TestDefaults(t *testing.T) {
	p := newPolicy(t, nil)
	if p.Name() != "balanced" || p.Interval() != 100*time.Millisecond {
		t.Errorf("Name, Interval = %q, %v; want balanced, 100ms", p.Name(), p.Interval())
	}
	// A quiet node still sends: every link at the floor.
	for i, r := range tick(t, p, []cover.LinkStats{{Peer: "a"}, {Peer: "b"}, {Peer: "c"}}) {
		if r != DefaultMinRate {
			t.Errorf("quiet link %d: rate %v, want min_rate %v", i, r, DefaultMinRate)
		}
	}
	if rs := tick(t, p, nil); len(rs) != 0 {
		t.Errorf("no links: %v", rs)
	}
}

// 100 frames in during a 100 ms tick and 10 data frames out: the node
// sends 1000 frames/s in all; evenly with spread even, each link what it
// received with reciprocal; every link at least its data demand.
func TestBalancesOutAgainstIn(t *testing.T) {
	links := []cover.LinkStats{
		{Peer: "a", DataSent: 10, DataRecv: 30, CoverRecv: 10},
		{Peer: "b", CoverRecv: 30},
		{Peer: "c", DataRecv: 5, CoverRecv: 15},
		{Peer: "d", CoverSent: 2, CoverRecv: 10},
	}
	even := tick(t, newPolicy(t, map[string]string{"spread": "even", "leak": "0"}), links)
	for i, r := range even {
		if !near(r, 250) {
			t.Errorf("even: link %d rate %v, want 250 (1000 frames/s over 4 links)", i, r)
		}
	}
	recip := tick(t, newPolicy(t, map[string]string{"leak": "0"}), links)
	for i, want := range []float64{400, 300, 200, 100} {
		if !near(recip[i], want) {
			t.Errorf("reciprocal: link %d rate %v, want %v (what it received)", i, recip[i], want)
		}
	}
	for name, rs := range map[string][]float64{"even": even, "reciprocal": recip} {
		if !near(sum(rs), 1000) {
			t.Errorf("%s: rates sum to %v frames/s, want the 1000 received", name, sum(rs))
		}
		if rs[0] < 100 {
			t.Errorf("%s: link a sends %v frames/s, below its data demand 100", name, rs[0])
		}
	}
}

// Data never waits for the policy: a link's rate covers the data it sent
// and the data still queued, even above the other links' share and above
// max_rate.
func TestDataDemandWins(t *testing.T) {
	for _, spread := range []string{SpreadReciprocal, SpreadEven} {
		p := newPolicy(t, map[string]string{"spread": spread, "max_rate": "500"})
		rs := tick(t, p, []cover.LinkStats{
			{Peer: "a", DataSent: 50, Queued: 30, CoverRecv: 1},
			{Peer: "b", CoverRecv: 1},
		})
		if !near(rs[0], 800) {
			t.Errorf("%s: link with 80 frames of data per 100 ms sends %v frames/s, want 800", spread, rs[0])
		}
		if rs[1] != DefaultMinRate {
			t.Errorf("%s: quiet link sends %v, want min_rate %v", spread, rs[1], DefaultMinRate)
		}
	}
}

// Padding received is answered less the leak, data in full.
func TestLeakOnlyOnPadding(t *testing.T) {
	p := newPolicy(t, map[string]string{"leak": "0.2"})
	rs := tick(t, p, []cover.LinkStats{{Peer: "data", DataRecv: 50}, {Peer: "pad", CoverRecv: 50}})
	if !near(rs[0], 500) || !near(rs[1], 400) {
		t.Errorf("rates %v; want 500 (data answered in full) and 400 (padding less 20 %%)", rs)
	}
}

func TestMinMax(t *testing.T) {
	for _, spread := range []string{SpreadReciprocal, SpreadEven} {
		p := newPolicy(t, map[string]string{"spread": spread, "min_rate": "35", "max_rate": "120", "leak": "0"})
		quiet := tick(t, p, []cover.LinkStats{{Peer: "a", CoverRecv: 1}, {Peer: "b"}})
		flood := tick(t, newPolicy(t, map[string]string{"spread": spread, "min_rate": "35", "max_rate": "120"}),
			[]cover.LinkStats{{Peer: "a", CoverRecv: 10000}, {Peer: "b", DataRecv: 10000}})
		for i := range 2 {
			if quiet[i] != 35 {
				t.Errorf("%s: quiet link %d sends %v, want min_rate 35", spread, i, quiet[i])
			}
			if flood[i] != 120 {
				t.Errorf("%s: flooded link %d sends %v, want max_rate 120", spread, i, flood[i])
			}
		}
	}
}

// Received rates are smoothed over window/interval ticks; a link that
// goes away is forgotten.
func TestWindowSmoothing(t *testing.T) {
	p := newPolicy(t, map[string]string{"window": "1s", "leak": "0", "min_rate": "1"})
	if r := tick(t, p, []cover.LinkStats{{Peer: "a", CoverRecv: 10}})[0]; !near(r, 100) {
		t.Fatalf("first tick: %v, want the measured 100", r)
	}
	// A step from 100 to 1100 frames/s moves a tenth of the way per tick.
	if r := tick(t, p, []cover.LinkStats{{Peer: "a", CoverRecv: 110}})[0]; !near(r, 200) {
		t.Errorf("after a step to 1100/s: %v, want 200", r)
	}
	if r := tick(t, p, []cover.LinkStats{{Peer: "a", CoverRecv: 110}})[0]; !near(r, 290) {
		t.Errorf("one tick later: %v, want 290", r)
	}
	tick(t, p, []cover.LinkStats{{Peer: "b", CoverRecv: 10}}) // a went away
	if r := tick(t, p, []cover.LinkStats{{Peer: "a", CoverRecv: 50}})[0]; !near(r, 500) {
		t.Errorf("a link back after a gap: %v, want its fresh 500, not a blend with the old rate", r)
	}
}

func TestOptions(t *testing.T) {
	p := newPolicy(t, map[string]string{"interval": "250ms", "window": "2s", "min_rate": "5",
		"max_rate": "50", "leak": "0", "spread": "even"})
	if p.Interval() != 250*time.Millisecond {
		t.Errorf("Interval = %v, want 250ms", p.Interval())
	}
	pol := p.(*Policy)
	if pol.window != 2*time.Second || pol.minRate != 5 || pol.maxRate != 50 || pol.leak != 0 || pol.reciprocal {
		t.Errorf("options not applied: %+v", pol)
	}
	// Unset options follow set ones rather than contradict them.
	long := newPolicy(t, map[string]string{"interval": "2s", "min_rate": "9000"}).(*Policy)
	if long.window != 2*time.Second || long.maxRate != 9000 {
		t.Errorf("interval 2s, min_rate 9000: window %v, max_rate %v; want 2s and 9000", long.window, long.maxRate)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		options map[string]string
		name    string // the option the error must name
	}{
		{map[string]string{"interval": "often"}, "interval"},
		{map[string]string{"interval": "0s"}, "interval"},
		{map[string]string{"interval": "-1s"}, "interval"},
		{map[string]string{"window": "soon"}, "window"},
		{map[string]string{"window": "50ms"}, "window"}, // shorter than the interval
		{map[string]string{"min_rate": "few"}, "min_rate"},
		{map[string]string{"min_rate": "0"}, "min_rate"},
		{map[string]string{"min_rate": "-1"}, "min_rate"},
		{map[string]string{"min_rate": "NaN"}, "min_rate"},
		{map[string]string{"max_rate": "+Inf"}, "max_rate"},
		{map[string]string{"max_rate": "10"}, "max_rate"}, // below the default min_rate
		{map[string]string{"min_rate": "100", "max_rate": "50"}, "max_rate"},
		{map[string]string{"leak": "1"}, "leak"},
		{map[string]string{"leak": "-0.1"}, "leak"},
		{map[string]string{"leak": "some"}, "leak"},
		{map[string]string{"spread": "uneven"}, "spread"},
		{map[string]string{"rate": "50"}, "rate"},
	}
	for _, tt := range tests {
		_, err := New(tt.options)
		if err == nil || !strings.Contains(err.Error(), `"`+tt.name+`"`) {
			t.Errorf("New(%v) = %v, want an error naming %q", tt.options, err, tt.name)
		}
	}
}
