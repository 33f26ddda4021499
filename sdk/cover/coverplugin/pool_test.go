package coverplugin_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// newPolicies makes n policies of pool, policy i with loop_rate i and
// poisson on for odd i, so that every answer says whose it is.
func newPolicies(t *testing.T, pool *coverplugin.Pool, n int) []cover.Policy {
	t.Helper()
	ps := make([]cover.Policy, n)
	for i := range ps {
		opts := map[string]string{"loop_rate": strconv.Itoa(i)}
		if i%2 == 1 {
			opts["poisson"] = "true"
		}
		p, err := pool.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	return ps
}

// checkTick ticks every policy in one TickMany, policy i with i+1 links,
// and checks each answer is its own.
func checkTick(t *testing.T, pool *coverplugin.Pool, ps []cover.Policy) {
	t.Helper()
	links := make([][]cover.LinkStats, len(ps))
	for i := range ps {
		links[i] = make([]cover.LinkStats, i+1)
		if got := ps[i].(cover.Looper).Loops().Rate; got != float64(i) {
			t.Errorf("policy %d: loop rate %v, want %d", i, got, i)
		}
		if ps[i].Name() != "fake" || ps[i].Interval() != 250*time.Millisecond {
			t.Errorf("policy %d: Name, Interval = %q, %v", i, ps[i].Name(), ps[i].Interval())
		}
	}
	targets, errs := pool.TickMany(time.Now(), ps, links)
	if errs != nil {
		t.Fatalf("TickMany errors: %v", errs)
	}
	for i, ts := range targets {
		if len(ts) != i+1 {
			t.Fatalf("policy %d: %d targets for %d links", i, len(ts), i+1)
		}
		for _, tg := range ts {
			if tg != (cover.Target{Rate: 42, Poisson: i%2 == 1}) {
				t.Errorf("policy %d: target %+v", i, tg)
			}
		}
	}
	// One policy alone, through its own Tick.
	if ts, err := ps[1].Tick(time.Now(), links[1]); err != nil || len(ts) != 2 || !ts[0].Poisson {
		t.Errorf("Tick of policy 1 = %+v, %v", ts, err)
	}
}

func TestPoolSharesOneChild(t *testing.T) {
	pool, err := coverplugin.StartPool(plugintest.Launcher(t, "fake"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ps := newPolicies(t, pool, 5)
	if !pool.Shared() {
		t.Fatal("a plugin with sessions: Shared() = false")
	}
	pid := ps[0].(pluginkit.Reporter).PluginStats().PID
	if pid == 0 || pid == os.Getpid() {
		t.Fatalf("policy runs in pid %d, want a child process", pid)
	}
	for i, p := range ps {
		if got := p.(pluginkit.Reporter).PluginStats().PID; got != pid {
			t.Errorf("policy %d in pid %d, policy 0 in %d: want one child", i, got, pid)
		}
	}
	checkTick(t, pool, ps)

	// A closed session is gone; the others go on.
	ps[2].Close()
	if _, errs := pool.TickMany(time.Now(), ps[2:3], [][]cover.LinkStats{nil}); errs == nil || errs[0] == nil {
		t.Error("a closed session still ticks")
	}
	if _, err := ps[3].Tick(time.Now(), nil); err != nil {
		t.Errorf("after another session closed: %v", err)
	}

	// A killed child comes back with every live session open again.
	plugintest.KillAndWait(t, ps[0].(pluginkit.Reporter))
	live := []cover.Policy{ps[0], ps[1]}
	checkTick(t, pool, live)
	if _, err := ps[4].Tick(time.Now(), make([]cover.LinkStats, 3)); err != nil {
		t.Errorf("session 4 after a restart: %v", err)
	}
}

// A plugin built before sessions: each policy gets a child of its own,
// and TickMany still answers every one.
func TestPoolFallsBackToOneChildPerPolicy(t *testing.T) {
	pool, err := coverplugin.StartPool(plugintest.Launcher(t, "old"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ps := newPolicies(t, pool, 3)
	defer func() {
		for _, p := range ps {
			p.Close()
		}
	}()
	if pool.Shared() {
		t.Fatal("a plugin without sessions: Shared() = true")
	}
	pids := map[int]bool{}
	for _, p := range ps {
		pids[p.(pluginkit.Reporter).PluginStats().PID] = true
	}
	if len(pids) != 3 {
		t.Errorf("3 policies in %d processes, want 3", len(pids))
	}
	checkTick(t, pool, ps)
}

// Bad options fail New with the policy's own error, and the pool stays
// usable.
func TestPoolBadOptions(t *testing.T) {
	pool, err := coverplugin.StartPool(plugintest.Launcher(t, "fake"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.New(map[string]string{"loop_rate": "x"}); err == nil {
		t.Fatal("New with loop_rate=x succeeded")
	}
	if !pool.Shared() {
		t.Error("a refused option made the pool fall back")
	}
	ps := newPolicies(t, pool, 2)
	checkTick(t, pool, ps)
}
