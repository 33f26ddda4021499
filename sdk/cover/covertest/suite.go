package covertest

import (
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Bounds the engine needs a policy to keep.
const (
	// MinInterval and MaxInterval bound Interval: the engine ticks the
	// policy that often, so a microsecond interval spins it, and a policy
	// that asks to be consulted less than hourly never adapts (or has
	// its units wrong).
	MinInterval = time.Millisecond
	MaxInterval = time.Hour
	// MaxRate bounds a link's Rate and the loop rate (frames or loops per
	// second): 10^6 frames/s is 1.4 GB/s of padding on one link, far
	// beyond any link; a larger rate is a unit error (bytes or bits for
	// frames) and would have the engine flood the link.
	MaxRate = 1e6
	// TickBound is how long one Tick may take. The engine calls Tick from
	// its shaping loop, so while a policy thinks, every shaped link waits
	// (its grid is 5 ms).
	TickBound = time.Second
)

// Run checks what the cover engine relies on from every policy that
// newPolicy creates: a name, an interval within [MinInterval,
// MaxInterval], one finite target per link within [0, MaxRate] for any
// number of links (none included, and as links come and go between
// ticks), answers within TickBound, a loop rate within [0, MaxRate] when
// it implements cover.Looper, the engine's statistics left as they were,
// and a clean Close. It does not judge the schedule itself; a policy's own
// tests do.
func Run(t *testing.T, newPolicy func(t *testing.T) cover.Policy) {
	t.Helper()
	t.Run("identity", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		if p.Name() == "" {
			t.Error("Name is empty")
		}
		if iv := p.Interval(); iv < MinInterval || iv > MaxInterval {
			t.Errorf("Interval = %v, want within [%v, %v]", iv, MinInterval, MaxInterval)
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
			checkRates(t, n, targets)
		}
	})
	t.Run("links come and go", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		now := time.Unix(1_800_000_000, 0)
		for _, n := range []int{17, 3, 0, 5, 1024, 2, 17} {
			now = now.Add(p.Interval())
			targets, err := p.Tick(now, SampleLinks(n))
			if err != nil {
				t.Fatalf("Tick(%d links): %v", n, err)
			}
			if len(targets) != n {
				t.Fatalf("Tick(%d links) after other counts returned %d targets: one target per link, "+
					"whatever the last tick had", n, len(targets))
			}
			checkRates(t, n, targets)
		}
	})
	t.Run("answers in time", func(t *testing.T) {
		p := newPolicy(t)
		defer p.Close()
		now := time.Unix(1_800_000_000, 0)
		for i, n := range []int{17, 17, 1024} {
			now = now.Add(p.Interval())
			done := make(chan error, 1)
			go func() {
				_, err := p.Tick(now, SampleLinks(n))
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Tick %d (%d links): %v", i+1, n, err)
				}
			case <-time.After(TickBound):
				t.Fatalf("Tick %d (%d links) did not answer within %v: the engine's shaping loop waits "+
					"for it, and every shaped link with it", i+1, n, TickBound)
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
		if r := l.Loops().Rate; !(r >= 0 && r <= MaxRate) {
			t.Errorf("Loops().Rate = %v, want within [0, %g]", r, float64(MaxRate))
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

// checkRates checks every target's rate is finite and within [0, MaxRate].
func checkRates(t *testing.T, n int, targets []cover.Target) {
	t.Helper()
	for i, tg := range targets {
		if !(tg.Rate >= 0 && tg.Rate <= MaxRate) { // NaN fails both
			t.Errorf("Tick(%d links): link %d rate %v, want finite and within [0, %g] frames/s", n, i, tg.Rate, float64(MaxRate))
			return
		}
	}
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
