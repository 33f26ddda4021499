package main

import (
	"os"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// childArg makes the re-executed test binary serve the policy, so the
// out-of-process test runs the real go-plugin path.
const childArg = "burst-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		coverplugin.Serve(New)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var opts = map[string]string{"rate": "10", "burst_rate": "100", "burst_every": "1s", "burst_for": "200ms", "interval": "50ms"}

// checkSchedule ticks p over two periods and checks the square wave.
func checkSchedule(t *testing.T, p cover.Policy) {
	t.Helper()
	if p.Name() != Name || p.Interval() != 50*time.Millisecond {
		t.Fatalf("Name, Interval = %q, %v", p.Name(), p.Interval())
	}
	t0 := time.Unix(1_700_000_000, 0)
	links := []cover.LinkStats{{Peer: "a", Queued: 1000}, {Peer: "b"}}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 100}, {150 * time.Millisecond, 100}, {200 * time.Millisecond, 10}, {900 * time.Millisecond, 10},
		{time.Second, 100}, {1100 * time.Millisecond, 100}, {1500 * time.Millisecond, 10}} {
		ts, err := p.Tick(t0.Add(c.at), links)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != len(links) {
			t.Fatalf("at %v: %d targets for %d links", c.at, len(ts), len(links))
		}
		for i, tg := range ts {
			if tg.Rate != c.want {
				t.Errorf("at %v: link %d rate %g, want %g (same for every link, whatever its load)", c.at, i, tg.Rate, c.want)
			}
		}
	}
}

func TestSchedule(t *testing.T) {
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	checkSchedule(t, p)
}

// TestOutOfProcess runs the same schedule through coverplugin.Launch, as
// a node runs the policy.
func TestOutOfProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := coverplugin.Launch(pluginkit.Launcher{Path: exe, Args: []string{childArg}, Name: Name}, opts)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer p.Close()
	checkSchedule(t, p)
}

func TestBadOptions(t *testing.T) {
	for _, o := range []map[string]string{
		{"rate": "-1"}, {"rate": "fast"}, {"burst_every": "0s"}, {"rate": "100", "burst_rate": "50"},
		{"burst_every": "1s", "burst_for": "2s"}, {"colour": "blue"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%v) accepted bad options", o)
		}
	}
	if _, err := New(nil); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}
