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
		{"loop_rate", "5"}, // not implemented: refused, not ignored
		{"rates", "10"},
	}
	for _, tt := range tests {
		_, err := New(map[string]string{tt.key: tt.value})
		if err == nil || !strings.Contains(err.Error(), `"`+tt.key+`"`) {
			t.Errorf("New(%s=%s) = %v, want an error naming %q", tt.key, tt.value, err, tt.key)
		}
	}
}
