package node

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// TestAttackSilentSybils: 8 Sybils join with descriptors valid as long as
// they can get (ten years before lifetimes were capped; MaxLifetime now),
// are admitted, then leave. The honest nodes must evict them once they
// have been silent for the bound, and their mimic links must all come up
// again.
func TestAttackSilentSybils(t *testing.T) { synctest.Test(t, testAttackSilentSybils) }

func testAttackSilentSybils(t *testing.T) {
	const honest, sybils = 8, 8
	const silence = 2 * time.Second
	sybilLifetime := min(10*365*24*time.Hour, descriptor.MaxLifetime)
	tn := startNet(t, honest+sybils, 2, func(i int, o *Options) {
		// Dead links are noticed within seconds, not LinkTimeout's 30.
		o.KeepaliveInterval, o.LinkTimeout = 500*time.Millisecond, 3*time.Second
		o.PeerSilence = silence
		if i >= honest {
			o.DescriptorLifetime = sybilLifetime
		}
	})
	isSybil := map[identity.ID]bool{}
	for _, n := range tn.nodes[honest:] {
		isSybil[n.id] = true
	}
	hit := 0
	for _, n := range tn.nodes[:honest] {
		for _, m := range n.Mimics() {
			if isSybil[m.ID] {
				hit++
				break
			}
		}
	}
	t.Logf("%d of %d honest nodes have a Sybil among their mimics", hit, honest)
	if hit == 0 {
		t.Skip("no honest node chose a Sybil in this draw")
	}
	for _, n := range tn.nodes[honest:] {
		n.Close()
	}
	left := time.Now()
	// broken describes what is still wrong: Sybils still held, mimic
	// links down.
	broken := func() string {
		down, held := 0, 0
		for _, n := range tn.nodes[:honest] {
			for _, m := range n.Mimics() {
				if !m.Up {
					down++
				}
			}
			for id := range isSybil {
				if _, ok := n.view.Get(id); ok {
					held++
				}
			}
		}
		if down == 0 && held == 0 {
			return ""
		}
		return fmt.Sprintf("%d honest mimic links down, %d Sybil entries still in honest views", down, held)
	}
	// Evicted within the bound (plus a liveness pass), then the mimic
	// links among honest nodes are made: a few seconds on two cores.
	limit := silence + 10*time.Second
	for {
		why := broken()
		if why == "" {
			t.Logf("Sybils evicted and every honest mimic link up %v after they left", time.Since(left).Round(10*time.Millisecond))
			return
		}
		if time.Since(left) > limit {
			t.Fatalf("ATTACK SUCCEEDED: %v after the Sybils left: %s", limit, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
