package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// Loop cover between real node processes. Eight nodes run the poisson
// policy as a child process with loop_rate 5; the observed node keeps one
// loop tunnel (cover.loop_tunnels = 1), so that every loop crosses the
// relay the test freezes, and every node a 2 s loop timeout. Once loops
// come back, the test stops a relay of that loop tunnel (SIGSTOP to its
// process group: the node and its plugins) and expects the alert, counted
// in the status and logged as a warning that names hops by short ID and no
// peer's address; then it resumes the relay and expects loops back through
// a rebuilt loop tunnel.
func TestLoopCoverE2E(t *testing.T) {
	const (
		count        = 8
		loopTimeout  = 2 * time.Second
		wantReturned = 15
	)
	nw, ctx := startE2ENet(t, count, localnet.Loopback{Cover: "poisson"}, 90*time.Second, func(i int, cfg *config.Config) {
		cfg.Cover.Options = map[string]string{"loop_rate": "5"}
		cfg.Cover.LoopTimeout = loopTimeout
		if i == 0 {
			cfg.Cover.LoopTunnels = 1
		}
	})

	ns := nw.Nodes
	src := ns[0]
	byShort := map[string]*localnet.Node{}
	for _, n := range ns {
		byShort[n.ID.Short()] = n
	}
	// poll asks src for its status until ok accepts it or the deadline
	// passes, and returns the last status seen.
	poll := func(what string, limit time.Duration, ok func(*control.StatusReply) bool) *control.StatusReply {
		t.Helper()
		deadline := time.Now().Add(limit)
		var st *control.StatusReply
		for {
			s, err := src.Client.Status(ctx)
			if err == nil {
				st = s
				if ok(st) {
					return st
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				logTails(t, ns[:1])
				if st != nil {
					t.Fatalf("%s: not within %v; last counters %v, loop RTT %.2f ms, loop tunnels %v", what, limit, loopCounters(st), st.LoopRTTMS, st.LoopTunnels)
				}
				t.Fatalf("%s: not within %v: %v", what, limit, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// 1. Loops go out and come back.
	loopStart := time.Now()
	st := poll("loops returning", 30*time.Second, func(st *control.StatusReply) bool {
		return st.Counters[loopcover.EventLoopsReturned] >= wantReturned && st.LoopRTTMS > 0 && len(st.LoopTunnels) == 1
	})
	c := st.Counters
	t.Logf("healthy: %v after membership: sent %d, returned %d, lost %d, alerts %d, median RTT %.2f ms, loop tunnel %v",
		time.Since(loopStart).Round(10*time.Millisecond), c[loopcover.EventLoopsSent], c[loopcover.EventLoopsReturned], c[loopcover.EventLoopsLost],
		c[loopcover.EventLoopAlerts], st.LoopRTTMS, st.LoopTunnels[0])
	if c[loopcover.EventLoopsLost] > c[loopcover.EventLoopsReturned]/5 || c[loopcover.EventLoopAlerts] != 0 {
		t.Fatalf("healthy network: lost %d of %d loops, %d alerts", c[loopcover.EventLoopsLost], c[loopcover.EventLoopsSent], c[loopcover.EventLoopAlerts])
	}
	coverOut := false
	for _, p := range st.Plugins {
		coverOut = coverOut || (p.Kind == "cover" && p.Name == "poisson" && !p.InProc && p.PID != 0)
	}
	if !coverOut {
		t.Fatalf("poisson is not running as a child process: %+v", st.Plugins)
	}
	hops := st.LoopTunnels[0]
	if len(hops) != 3 {
		t.Fatalf("loop tunnel %v, want 3 hops", hops)
	}

	// 2. Freeze the loop tunnel's middle hop.
	relay := byShort[hops[1]]
	if relay == nil || relay == src {
		t.Fatalf("loop tunnel hop %s is not one of the other nodes", hops[1])
	}
	pgid := relay.PID() // localnet puts each node in its own group
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGCONT) })
	alerts0, built0 := c[loopcover.EventLoopAlerts], c[loopcover.EventLoopTunnelsBuilt]
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	st = poll("loop alert after freezing "+relay.ID.Short(), 20*time.Second, func(st *control.StatusReply) bool {
		return st.Counters[loopcover.EventLoopAlerts] > alerts0
	})
	alertAfter := time.Since(frozen)
	c = st.Counters
	t.Logf("froze relay %s (hop 2 of %v); alert %v later: sent %d, returned %d, lost %d, alerts %d",
		relay.ID.Short(), hops, alertAfter.Round(10*time.Millisecond), c[loopcover.EventLoopsSent], c[loopcover.EventLoopsReturned], c[loopcover.EventLoopsLost], c[loopcover.EventLoopAlerts])
	if alertAfter < loopTimeout {
		t.Errorf("alert %v after the freeze, sooner than the loop timeout %v", alertAfter, loopTimeout)
	}

	// The warning, in the node's stderr: hops by short ID, no peer's address.
	logPath := src.LogPath()
	var warns []string
	var alertLine string
	for deadline := time.Now().Add(5 * time.Second); alertLine == "" && time.Now().Before(deadline); {
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		warns = warns[:0]
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") {
				warns = append(warns, line)
				if strings.Contains(line, "loop cover:") {
					alertLine = line
				}
			}
		}
		if alertLine == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if alertLine == "" {
		t.Fatalf("no \"loop cover:\" warning in %s; warnings:\n%s", logPath, strings.Join(warns, "\n"))
	}
	t.Logf("warning: %s", alertLine)
	m := regexp.MustCompile(` through="([^"]*)"`).FindStringSubmatch(alertLine)
	if m == nil {
		t.Fatalf("the warning has no through attribute: %s", alertLine)
	}
	named := strings.Split(m[1], ", ")
	for _, id := range named {
		if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(id) || !slices.Contains(hops, id) {
			t.Errorf("the warning names %q, not a short ID of the loop tunnel %v", id, hops)
		}
	}
	if !slices.Contains(named, relay.ID.Short()) {
		t.Errorf("the warning does not name the frozen relay %s: %s", relay.ID.Short(), alertLine)
	}
	for _, line := range warns {
		for _, n := range ns[1:] {
			if strings.Contains(line, n.Addr().Addr().String()) {
				t.Errorf("a warning names peer %s's address %s: %s", n.ID.Short(), n.Addr().Addr(), line)
			}
		}
	}

	// 3. Resume the relay: loops come back through a rebuilt loop tunnel.
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	returned1 := c[loopcover.EventLoopsReturned]
	st = poll("loops returning after the relay resumed", 30*time.Second, func(st *control.StatusReply) bool {
		return st.Counters[loopcover.EventLoopsReturned] >= returned1+wantReturned &&
			st.Counters[loopcover.EventLoopTunnelsBuilt] > built0 && len(st.LoopTunnels) == 1
	})
	c = st.Counters
	t.Logf("resumed: %d more loops returned %v later: sent %d, returned %d, lost %d, alerts %d, median RTT %.2f ms, loop tunnels built %d, loop tunnel now %v",
		c[loopcover.EventLoopsReturned]-returned1, time.Since(resumed).Round(10*time.Millisecond), c[loopcover.EventLoopsSent], c[loopcover.EventLoopsReturned],
		c[loopcover.EventLoopsLost], c[loopcover.EventLoopAlerts], st.LoopRTTMS, c[loopcover.EventLoopTunnelsBuilt], st.LoopTunnels[0])
	if _, err := relay.Client.Status(ctx); err != nil || relay.Exited() {
		t.Errorf("the resumed relay %s does not answer: %v", relay.ID.Short(), err)
	}
}

func loopCounters(st *control.StatusReply) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range st.Counters {
		if strings.HasPrefix(k, "loop") {
			out[k] = v
		}
	}
	return out
}
