package node

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// A hostile first hop forges forward cells on a circuit toward the honest
// second hop, hoping one verifies (or that the second hop's reaction
// tells it something). The second hop is the real relay code. It must
// relay none of them, answer none of them, and once more than the budget
// of cells failed their tag, tear the circuit down both ways and count it.
func TestAttackForgedCellsCostTheCircuit(t *testing.T) {
	synctest.Test(t, testAttackForgedCellsCostTheCircuit)
}

func testAttackForgedCellsCostTheCircuit(t *testing.T) {
	const budget = tagFailBudget
	tn, taps := startTapNet(t, 10, 3, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	hops := tun.Hops()
	hostile, victim, third := tn.byID(hops[0].ID), tn.byID(hops[1].ID), tn.byID(hops[2].ID)

	// The circuit ID the hostile hop uses on its link to the victim.
	var out circKey
	hostile.mu.Lock()
	for k, r := range hostile.routes {
		if r.c != nil && r.fromNext && k.peer == victim.id && r.c.prev.peer == src.id {
			out = k
		}
	}
	hostile.mu.Unlock()
	if out.id == 0 {
		t.Fatal("no circuit from the first hop to the second")
	}
	victimKey := circKey{hostile.id, out.id}
	holds := func(n *Node, k circKey) bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		_, ok := n.routes[k]
		return ok
	}
	var victimOut circKey // the victim's circuit toward the third hop
	victim.mu.Lock()
	if r, ok := victim.routes[victimKey]; ok {
		victimOut = r.c.next
	}
	victim.mu.Unlock()

	// What the victim sends back on the circuit: anything but the
	// DESTROY is a reaction the forger could learn from.
	var answers, destroys atomic.Int64
	recv := func(from identity.ID, pl []byte) {
		if from == victim.id && circOf(pl) == out.id {
			if pl[0] == kindDestroy {
				destroys.Add(1)
			} else {
				answers.Add(1)
			}
		}
	}
	taps[hostile.id].received.Store(&recv)

	forge := func(k int) {
		l := hostile.upLink(victim.id)
		for range k {
			p := getBuf()
			pl := p.payload()
			clear(pl[:payloadHeader])
			pl[0] = kindRelayFwd
			putCirc(pl, out.id)
			rand.Read(pl[payloadHeader:])
			hostile.sendPayload(l, p)
		}
	}
	tampered0, relayed0 := victim.Stat(DropCellTampered), victim.Stat(EventCellsRelayed)
	forge(budget)
	waitFor(t, "the budget's forgeries counted", 5*time.Second, func() bool {
		return victim.Stat(DropCellTampered)-tampered0 >= budget
	})
	if !holds(victim, victimKey) {
		t.Fatalf("the victim dropped the circuit within the budget (%d forged cells)", budget)
	}
	forge(5 * budget)
	deadline := time.Now().Add(5 * time.Second)
	for holds(victim, victimKey) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	failed := victim.Stat(DropCellTampered) - tampered0
	t.Logf("forged %d cells: %d failed their tag at the victim, %d relayed on, %d answered, %d DESTROYs back; %s = %d",
		6*budget, failed, victim.Stat(EventCellsRelayed)-relayed0, answers.Load(), destroys.Load(),
		DropCircuitTagBudget, victim.Stat(DropCircuitTagBudget))
	if holds(victim, victimKey) {
		t.Fatalf("the victim still holds the circuit after %d forged cells failed their tag", failed)
	}
	if got := victim.Stat(DropCircuitTagBudget); got != 1 {
		t.Errorf("%s = %d, want 1", DropCircuitTagBudget, got)
	}
	if failed > budget+1 {
		// The cells after the teardown find no circuit at all.
		t.Errorf("%d cells were checked against the circuit's keys, want at most %d", failed, budget+1)
	}
	if d := victim.Stat(EventCellsRelayed) - relayed0; d != 0 {
		t.Errorf("the victim relayed %d cells while forgeries arrived", d)
	}
	if answers.Load() != 0 {
		t.Errorf("the victim answered the forger %d times on the circuit", answers.Load())
	}
	waitFor(t, "DESTROY back to the forger", 3*time.Second, func() bool { return destroys.Load() > 0 })
	// The third hop, the tunnel's last, lets the circuit go or keeps it
	// as an orphan for a rejoin by its initiator (rejoin.go): either way
	// it no longer has a previous hop.
	waitFor(t, "DESTROY on to the third hop", 3*time.Second, func() bool {
		third.mu.Lock()
		r, ok := third.routes[circKey{victim.id, victimOut.id}]
		third.mu.Unlock()
		return !ok || r.c.orphaned.Load() != 0
	})
}

// The same from the other side: a hostile first hop forges backward
// cells toward the initiator. The initiator drops them, and past the
// budget closes the tunnel (DESTROY reason protocol to that hop).
func TestAttackForgedBackwardCellsCloseTheTunnel(t *testing.T) {
	synctest.Test(t, testAttackForgedBackwardCellsCloseTheTunnel)
}

func testAttackForgedBackwardCellsCloseTheTunnel(t *testing.T) {
	tn := startNet(t, 8, 3, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	hostile := tn.byID(tun.Hops()[0].ID)
	key := circKey{src.id, tun.circID()}
	forge := func(k int) {
		l := hostile.upLink(src.id)
		for range k {
			p := getBuf()
			pl := p.payload()
			clear(pl[:payloadHeader])
			pl[0] = kindRelayBwd
			putCirc(pl, key.id)
			rand.Read(pl[payloadHeader:])
			hostile.sendPayload(l, p)
		}
	}
	tampered0 := src.Stat(DropCellTampered)
	forge(tagFailBudget)
	waitFor(t, "the budget's forgeries counted", 5*time.Second, func() bool {
		return src.Stat(DropCellTampered)-tampered0 >= tagFailBudget
	})
	if tun.isClosed() {
		t.Fatalf("the tunnel closed within the budget (%d forged cells)", tagFailBudget)
	}
	forge(4 * tagFailBudget)
	select {
	case <-tun.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the tunnel is still open after %d forged cells failed their tag", src.Stat(DropCellTampered)-tampered0)
	}
	if got := src.Stat(DropCircuitTagBudget); got != 1 {
		t.Errorf("%s = %d, want 1", DropCircuitTagBudget, got)
	}
	waitFor(t, "the hostile hop to get the DESTROY", 3*time.Second, func() bool {
		hostile.mu.Lock()
		defer hostile.mu.Unlock()
		_, held := hostile.routes[key]
		return !held
	})
}
