package node

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// A relay that fails every extension is blamed for it during a build:
// each build asks it to extend at most once, and no build ends with it
// anywhere but as the last hop (where it extends nothing).
func TestBuildBlamesReportingHop(t *testing.T) { synctest.Test(t, testBuildBlamesReportingHop) }

func testBuildBlamesReportingHop(t *testing.T) {
	tn := startNet(t, 10, 3, nil)
	src := tn.nodes[0]
	// One of the hops a walk may start at, so that builds meet it.
	hostile := tn.byID(identity.ID(src.mimicTable().Chosen(src.id)[0]))
	var asked atomic.Int64
	refuse := func(identity.ID) bool { asked.Add(1); return false }
	hostile.hooks.extendTo.Store(&refuse)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const builds = 15
	through := 0
	for i := range builds {
		before := asked.Load()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		if d := asked.Load() - before; d > 1 {
			t.Errorf("build %d asked the refusing relay to extend %d times", i, d)
		}
		for j, h := range tun.Hops() {
			if h.ID == hostile.id && j < 2 {
				t.Errorf("build %d has the refusing relay at hop %d", i, j+1)
			}
		}
		tun.Close()
		if asked.Load() > before {
			through++
		}
	}
	t.Logf("the refusing relay was asked to extend in %d of %d builds", through, builds)
	if through == 0 {
		t.Fatal("no build met the refusing relay: the test tests nothing")
	}
}
