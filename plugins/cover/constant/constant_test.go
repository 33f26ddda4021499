package constant

import (
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

var _ cover.Factory = New

func TestDefaults(t *testing.T) {
	p, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "constant" || p.Interval() != 100*time.Millisecond {
		t.Errorf("Name, Interval = %q, %v", p.Name(), p.Interval())
	}
	checkRate(t, p, 50)
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
	checkRate(t, p, 12.5)
}

func checkRate(t *testing.T, p cover.Policy, want float64) {
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
			if tg.Rate != want {
				t.Errorf("link %d: rate %v, want %v", i, tg.Rate, want)
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
		{"rates", "10"},
	}
	for _, tt := range tests {
		_, err := New(map[string]string{tt.key: tt.value})
		if err == nil || !strings.Contains(err.Error(), `"`+tt.key+`"`) {
			t.Errorf("New(%s=%s) = %v, want an error naming %q", tt.key, tt.value, err, tt.key)
		}
	}
}
