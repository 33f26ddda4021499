package pnat

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// janitorExit is an Exit with what the janitor uses and no stack: a test
// drives mappings and flows directly.
func janitorExit(t *testing.T, idle, tcpIdle time.Duration) (*Exit, func()) {
	t.Helper()
	a, err := New(map[string]string{OptDNSAddr: "none", OptIdleTimeout: idle.String(), OptTCPIdleTimeout: tcpIdle.String()})
	if err != nil {
		t.Fatal(err)
	}
	e := a.(*Exit)
	e.hostAddrs = func() map[netip.Addr]bool { return map[netip.Addr]bool{} }
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.opened = true
	return e, func() { e.cancel(); e.wg.Wait() }
}

func (e *Exit) janitorRuns() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.janitorOn
}

// The janitor runs only while there is a mapping: none at first, one
// from the first mapping on, which expires a UDP flow idle_timeout after
// its last packet and a TCP flow tcp_idle_timeout after its, frees the
// mapping idle_timeout after its last flow (within a tick, as the ticker
// did), and then stops. No ticker:
// an exit with nothing to expire is not woken.
func TestJanitorExpiresOnTimeAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle, tcpIdle = 2 * time.Minute, 10 * time.Minute
		e, stop := janitorExit(t, idle, tcpIdle)
		defer stop()
		e.wg.Add(1)
		e.janitor() // what Open starts: nothing to do yet
		if e.janitorRuns() {
			t.Fatal("janitor runs with no mapping")
		}
		m, err := e.mappingFor(1, netip.MustParseAddr("100.64.0.2"))
		if err != nil {
			t.Fatal(err)
		}
		if !e.janitorRuns() {
			t.Fatal("janitor not started by the first mapping")
		}
		udp, err := e.openFlow(m, kindUDP, flowKey{proto: 17, src: netip.MustParseAddrPort("100.64.1.0:5000"), dst: netip.MustParseAddrPort("192.0.2.1:53")})
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := e.openFlow(m, kindTCP, flowKey{})
		if err != nil {
			t.Fatal(err)
		}
		aborted := func(f *flow) bool { f.mu.Lock(); defer f.mu.Unlock(); return f.aborted }
		start := time.Now()
		// The UDP flow: ends within a janitor round of idle after its
		// last packet (kept alive for a minute first).
		time.Sleep(time.Minute)
		udp.touch()
		for !aborted(udp) {
			time.Sleep(time.Second)
		}
		if got, want := time.Since(start), time.Minute+idle; got < want || got > want+time.Second {
			t.Errorf("UDP flow ended %v after start, want %v (+ < 1 s)", got, want)
		}
		e.releaseFlow(udp)
		for !aborted(tcp) {
			time.Sleep(time.Second)
		}
		if got := time.Since(start); got < tcpIdle || got > tcpIdle+time.Second {
			t.Errorf("TCP flow ended %v after start, want %v (+ < 1 s)", got, tcpIdle)
		}
		ended := time.Now()
		e.releaseFlow(tcp)
		for e.janitorRuns() {
			time.Sleep(time.Second)
		}
		if got := time.Since(ended); got < idle || got > idle+e.janitorTick()+time.Second {
			t.Errorf("mapping freed and janitor stopped %v after its last flow, want %v (+ a tick)", got, idle)
		}
		if e.existingMapping(1, netip.MustParseAddr("100.64.0.2")) != nil {
			t.Error("mapping not freed")
		}
		if n := e.stats.idleClosed.Load(); n != 2 {
			t.Errorf("idle_closed = %d, want 2", n)
		}
		// A new mapping starts it again.
		if _, err := e.mappingFor(2, netip.MustParseAddr("100.64.0.3")); err != nil {
			t.Fatal(err)
		}
		if !e.janitorRuns() {
			t.Fatal("janitor not started again by a new mapping")
		}
	})
}
