package node

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
)

// bothIn reports whether path holds both a and b.
func bothIn(path []identity.ID, a, b identity.ID) bool {
	return slices.Contains(path, a) && slices.Contains(path, b)
}

// Selective denial of service: a hostile relay h, the first hop of a
// tunnel, drops the rest of it (TRUNCATED, as if its next link had died)
// and then fails every EXTEND toward an honest node, extending only to
// its colluder c. If the initiator repairs from h, blaming only the hop h
// was asked to reach, h gets to refuse until the next hop is c: the
// pair then holds two hops of the tunnel. The initiator must blame the
// hop that reported as well, so that the pair holds two hops of the
// repaired tunnels no more often than of freshly chosen paths (passive
// colluders).
func TestAttackSelectiveExtendFailure(t *testing.T) {
	synctest.Test(t, testAttackSelectiveExtendFailure)
}

func testAttackSelectiveExtendFailure(t *testing.T) {
	const trials = 12
	tn := startNet(t, 12, 3, nil)
	src := tn.nodes[0]
	table := src.mimicTable()
	chosen := func(id identity.ID) []identity.ID {
		var out []identity.ID
		for _, m := range table.Chosen(id) {
			out = append(out, identity.ID(m))
		}
		return out
	}
	// h: one of our mimics; c: one h chose; x, y: an honest path on from h.
	var h, c, x, y identity.ID
	found := false
	for _, m := range src.Mimics() {
		for _, cc := range chosen(m.ID) {
			for _, xx := range chosen(m.ID) {
				for _, yy := range chosen(xx) {
					if cc == src.id || xx == src.id || yy == src.id || xx == cc || yy == cc || yy == m.ID {
						continue
					}
					h, c, x, y, found = m.ID, cc, xx, yy, true
				}
			}
		}
	}
	if !found {
		t.Fatal("no hostile hop with a colluder and an honest path on in this draw")
	}
	hostile := tn.byID(h)
	refuse := func(next identity.ID) bool { return next == c }

	// A passive pair holds two hops of this share of fresh paths.
	passive := 0
	const samples = 2000
	for range samples {
		p, err := src.SelectPath(3)
		if err != nil {
			t.Fatal(err)
		}
		if bothIn(p, h, c) {
			passive++
		}
	}
	passiveShare := float64(passive) / samples

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	linked, repaired := 0, 0
	for i := range trials {
		hostile.hooks.extendTo.Store(nil)
		tun, err := src.BuildTunnelPath(ctx, []identity.ID{h, x, y})
		if err != nil {
			t.Fatalf("trial %d: building %s %s %s: %v", i, h.Short(), x.Short(), y.Short(), err)
		}
		hostile.hooks.extendTo.Store(&refuse)
		done0 := repairsOf(src)
		// The hostile hop cuts the tunnel behind it, by the real code a
		// relay runs when its next link dies.
		hostile.mu.Lock()
		r := hostile.routes[circKey{src.id, tun.circID()}]
		hostile.mu.Unlock()
		if r.c == nil {
			t.Fatalf("trial %d: the hostile hop holds no circuit for the tunnel", i)
		}
		hostile.truncate(r.c)
		hostile.originate(r.c, onion.CmdTruncated, nil)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) && !tun.isClosed() &&
			repairsOf(src) == done0 {
			time.Sleep(10 * time.Millisecond)
		}
		for time.Now().Before(deadline) && tun.isRepairing() {
			time.Sleep(10 * time.Millisecond)
		}
		path := tun.hopIDs()
		if !tun.isClosed() && len(path) == 3 {
			repaired++
			if bothIn(path, h, c) {
				linked++
			}
		}
		t.Logf("trial %d: repaired path %s (closed %v)", i, shorts(path), tun.isClosed())
		tun.Close()
	}
	hostile.hooks.extendTo.Store(nil)
	share := float64(linked) / trials
	t.Logf("hostile %s, colluder %s: the pair holds two hops of %d of %d repaired tunnels (%.2f); of fresh paths %.3f (passive, %d samples)",
		h.Short(), c.Short(), linked, trials, share, passiveShare, samples)
	if repaired < trials*3/4 {
		t.Errorf("only %d of %d tunnels were repaired", repaired, trials)
	}
	// Two binomial standard deviations of slack over the passive share.
	if slack := 2 * math.Sqrt(passiveShare*(1-passiveShare)/trials); share > passiveShare+slack {
		t.Errorf("the hostile pair holds two hops of %.2f of repaired tunnels, passive colluders %.3f (+%.3f)", share, passiveShare, slack)
	}
}
