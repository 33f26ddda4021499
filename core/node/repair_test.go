package node

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/clock"
	"github.com/tarzan-net/tarzan/core/identity"
)

// Repairs keep hops up to the cap (3 in 10 minutes); the next one
// rebuilds the tunnel on a fresh path under the same Tunnel: a new
// circuit on the link to hop 1, the old one released, every hop
// reachable.
func TestTunnelRepairCapRebuildsFresh(t *testing.T) {
	synctest.Test(t, testTunnelRepairCapRebuildsFresh)
}

func testTunnelRepairCapRebuildsFresh(t *testing.T) {
	tn := startNet(t, 10, 3, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	first := tun.Hops()[0].ID
	for i := range repairCap {
		if err := tun.Repair(ctx, 1); err != nil {
			t.Fatalf("repair %d: %v", i+1, err)
		}
		if h := tun.Hops()[0].ID; h != first {
			t.Fatalf("repair %d within the cap changed hop 1", i+1)
		}
	}
	if got := src.Stat(EventTunnelsRepaired); got != repairCap {
		t.Fatalf("%s = %d, want %d", EventTunnelsRepaired, got, repairCap)
	}
	oldKey := circKey{src.id, tun.circID()}
	oldFirst := tn.byID(first)
	if err := tun.Repair(ctx, 1); err != nil {
		t.Fatalf("repair past the cap: %v", err)
	}
	if got := src.Stat(EventTunnelsRebuilt); got != 1 {
		t.Fatalf("%s = %d after a repair past the cap, want 1", EventTunnelsRebuilt, got)
	}
	if tun.circID() == oldKey.id {
		t.Error("the rebuilt tunnel kept its circuit on the link to hop 1")
	}
	waitFor(t, "the old first hop to release the old circuit", 3*time.Second, func() bool {
		oldFirst.mu.Lock()
		defer oldFirst.mu.Unlock()
		_, held := oldFirst.routes[oldKey]
		return !held
	})
	if hops := tun.Hops(); len(hops) != 3 {
		t.Fatalf("rebuilt tunnel has %d hops, want 3", len(hops))
	}
	for i := range 3 {
		if _, err := tun.Ping(ctx, i); err != nil {
			t.Fatalf("ping hop %d of the rebuilt tunnel: %v", i+1, err)
		}
	}
	if n := src.Status().Tunnels; n != 1 {
		t.Errorf("the source holds %d tunnels, want 1", n)
	}
}

// Blame wears off: a hop blamed blameFor ago may be walked into again,
// one blamed just now may not. (A long-lived tunnel in a small network
// would otherwise run out of hops after a few relay faults.)
func TestBlameExpires(t *testing.T) {
	clk := &stoppedClock{now: time.Unix(1_000_000, 0)}
	n := &Node{opts: Options{Clock: clk}}
	tun := &Tunnel{n: n}
	old, fresh := identity.ID{1}, identity.ID{2}
	tun.mu.Lock()
	tun.blameLocked([]identity.ID{old})
	tun.mu.Unlock()
	clk.now = clk.now.Add(blameFor - time.Minute)
	tun.mu.Lock()
	tun.blameLocked([]identity.ID{fresh})
	tun.mu.Unlock()
	if got := tun.avoidList(); !slices.Contains(got, old) || !slices.Contains(got, fresh) {
		t.Fatalf("avoid list %v before blameFor, want both hops", got)
	}
	clk.now = clk.now.Add(time.Minute)
	if got := tun.avoidList(); slices.Contains(got, old) || !slices.Contains(got, fresh) {
		t.Fatalf("avoid list %v at blameFor after the first blame, want only the later one", got)
	}
}

// stoppedClock reads a time the test sets; nothing may wait on it.
type stoppedClock struct {
	clock.Clock
	now time.Time
}

func (c *stoppedClock) Now() time.Time { return c.now }
