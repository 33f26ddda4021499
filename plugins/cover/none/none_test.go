package none

import (
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

var _ cover.Factory = New

func TestNone(t *testing.T) {
	for _, opts := range []map[string]string{nil, {}} {
		p, err := New(opts)
		if err != nil {
			t.Fatalf("New(%v): %v", opts, err)
		}
		if p.Name() != "none" || p.Interval() != time.Hour {
			t.Errorf("Name, Interval = %q, %v", p.Name(), p.Interval())
		}
		for _, n := range []int{0, 1, 5} {
			ts, err := p.Tick(time.Now(), make([]cover.LinkStats, n))
			if err != nil || len(ts) != n {
				t.Fatalf("Tick(%d links) = %v, %v", n, ts, err)
			}
			for i, tg := range ts {
				if tg.Rate != 0 {
					t.Errorf("link %d: rate %v, want 0", i, tg.Rate)
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestUnknownOption(t *testing.T) {
	_, err := New(map[string]string{"rate": "10"})
	if err == nil || !strings.Contains(err.Error(), `"rate"`) {
		t.Errorf("New(rate=10) = %v, want an error naming the key", err)
	}
}
