package covertest

import (
	"math"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Run checks what the cover engine relies on from every policy that
// newPolicy creates: a name, a positive interval, one finite,
// non-negative target per link for any number of links (none included),
// a finite, non-negative loop rate when it implements cover.Looper, the
// engine's statistics left as they were, and a clean Close. It does
// not judge the schedule itself; a policy's own tests do.
func Run(t *testing.T, newPolicy func(t *testing.T) cover.Policy) {
	t.Helper()
	t.Run("identity", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		if p.Name() == "" {
			t.Error("Name is empty")
		}
		if p.Interval() <= 0 {
			t.Errorf("Interval = %v, want > 0", p.Interval())
		}
	})
	t.Run("targets", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		now := time.Unix(1_800_000_000, 0)
		for _, n := range []int{0, 1, 3, 17} {
			now = now.Add(p.Interval())
			links := SampleLinks(n)
			targets, err := p.Tick(now, links)
			if err != nil {
				t.Fatalf("Tick(%d links): %v", n, err)
			}
			if len(targets) != n {
				t.Fatalf("Tick(%d links) returned %d targets", n, len(targets))
			}
			for i, tg := range targets {
				if tg.Rate < 0 || math.IsNaN(tg.Rate) || math.IsInf(tg.Rate, 0) {
					t.Errorf("Tick(%d links): link %d rate %v, want finite and >= 0", n, i, tg.Rate)
				}
			}
		}
	})
	t.Run("loops", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		l, ok := p.(cover.Looper)
		if !ok {
			t.Skip("the policy asks for no loop cover (no cover.Looper)")
		}
		if r := l.Loops().Rate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			t.Errorf("Loops().Rate = %v, want finite and >= 0", r)
		}
	})
	t.Run("leaves the stats alone", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		links := SampleLinks(5)
		want := SampleLinks(5)
		if _, err := p.Tick(time.Unix(1_800_000_000, 0), links); err != nil {
			t.Fatal(err)
		}
		for i := range links {
			if links[i] != want[i] {
				t.Errorf("link %d: Tick changed the engine's stats from %+v to %+v", i, want[i], links[i])
			}
		}
	})
	t.Run("close", func(t *testing.T) {
		p := newPolicy(t)
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// SampleLinks returns n links with varied, plausible statistics for one
// tick: idle, busy senders, busy receivers, a full queue.
func SampleLinks(n int) []cover.LinkStats {
	links := make([]cover.LinkStats, n)
	for i := range links {
		links[i] = cover.LinkStats{
			Peer:      string(rune('a'+i%26)) + "0000000",
			Queued:    (i * 37) % 50,
			DataSent:  uint64((i * 13) % 40),
			CoverSent: uint64((i * 7) % 10),
			DataRecv:  uint64((i * 11) % 30),
			CoverRecv: uint64((i * 5) % 20),
		}
	}
	return links
}
