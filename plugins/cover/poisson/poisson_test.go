package poisson

import (
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/covertest"
)

var _ cover.Factory = New

func TestConformance(t *testing.T) {
	covertest.Run(t, func(t *testing.T) cover.Policy {
		p, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

func TestDefaults(t *testing.T) {
	p, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "poisson" || p.Interval() != 100*time.Millisecond {
		t.Errorf("Name, Interval = %q, %v; want poisson, 100ms", p.Name(), p.Interval())
	}
	checkTargets(t, p, 50)
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestOptions(t *testing.T) {
	p, err := New(map[string]string{"rate": "12.5", "interval": "250ms"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Interval() != 250*time.Millisecond {
		t.Errorf("Interval = %v, want 250ms", p.Interval())
	}
	checkTargets(t, p, 12.5)
}

// Every link, busy or idle, gets the configured rate at Poisson gaps.
func checkTargets(t *testing.T, p cover.Policy, rate float64) {
	t.Helper()
	links := []cover.LinkStats{
		{Peer: "a"},
		{Peer: "b", Queued: 1000, DataSent: 5000},
		{Peer: "c", CoverSent: 50, DataRecv: 7, CoverRecv: 43},
	}
	for _, n := range []int{0, len(links)} {
		ts, err := p.Tick(time.Now(), links[:n])
		if err != nil || len(ts) != n {
			t.Fatalf("Tick(%d links) = %v, %v", n, ts, err)
		}
		for i, tg := range ts {
			if tg != (cover.Target{Rate: rate, Poisson: true}) {
				t.Errorf("link %d: target %+v, want rate %v with Poisson gaps", i, tg, rate)
			}
		}
	}
}

// loop_rate is the node-wide loop schedule the policy hands the node
// through cover.Looper; 0, the default, asks for none. It does not change
// the per-link targets.
func TestLoopRate(t *testing.T) {
	for _, tt := range []struct {
		options map[string]string
		want    float64
	}{
		{nil, 0},
		{map[string]string{"loop_rate": "0"}, 0},
		{map[string]string{"loop_rate": "20"}, 20},
		{map[string]string{"loop_rate": "0.25", "rate": "10"}, 0.25},
	} {
		p, err := New(tt.options)
		if err != nil {
			t.Fatalf("New(%v): %v", tt.options, err)
		}
		l, ok := p.(cover.Looper)
		if !ok {
			t.Fatal("poisson does not implement cover.Looper")
		}
		if got := l.Loops(); got != (cover.Loops{Rate: tt.want}) {
			t.Errorf("New(%v).Loops() = %+v, want rate %v", tt.options, got, tt.want)
		}
		rate := DefaultRate
		if r := tt.options["rate"]; r != "" {
			rate = 10
		}
		checkTargets(t, p, rate)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		key, value string
	}{
		{"rate", "fast"},
		{"rate", "0"},
		{"rate", "-3"},
		{"rate", "NaN"},
		{"rate", "+Inf"},
		{"interval", "often"},
		{"interval", "0s"},
		{"interval", "-1ms"},
		{"loop_rate", "often"},
		{"loop_rate", "-1"},
		{"loop_rate", "NaN"},
		{"loop_rate", "+Inf"},
		{"loop_rate", ""},
		{"rates", "10"},
	}
	for _, tt := range tests {
		_, err := New(map[string]string{tt.key: tt.value})
		if err == nil || !strings.Contains(err.Error(), `"`+tt.key+`"`) {
			t.Errorf("New(%s=%s) = %v, want an error naming %q", tt.key, tt.value, err, tt.key)
		}
		if err != nil && tt.key == "loop_rate" && !strings.Contains(err.Error(), "loops per second") {
			t.Errorf("New(loop_rate=%s) = %v, want an error saying what loop_rate counts", tt.value, err)
		}
	}
}
