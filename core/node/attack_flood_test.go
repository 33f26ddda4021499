package node

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
)

// floodCreates has attacker send count CREATEs to victim over their mimic
// link, each a valid handshake (the victim cannot tell them from real
// ones before doing the key work), on circuit IDs from first on. It sends
// in batches and waits for the victim to settle each (accepted or
// refused), so that no CREATE is lost to a full in-memory queue.
func floodCreates(t *testing.T, attacker, victim *Node, first uint32, count int) {
	t.Helper()
	p, ok := attacker.view.Get(victim.id)
	if !ok {
		t.Fatal("the attacker does not know the victim")
	}
	_, msg, err := onion.NewClientHandshake(rand.Reader, victim.id, p.Desc.OnionKey)
	if err != nil {
		t.Fatal(err)
	}
	var high uint32
	if !less(attacker.id, victim.id) {
		high = 1 << 31
	}
	// The attacker keeps the circuits its raw CREATEs make: its core does
	// not know them and would otherwise free each with DESTROY(GONE).
	attacker.hooks.keepGhosts.Store(true)
	settled := func() uint64 {
		return victim.Stat(EventCircuits) + victim.Stat(DropCreateLimit) + victim.Stat(DropCreateRate)
	}
	const batch = 256
	for sent := 0; sent < count; {
		before := settled()
		k := min(batch, count-sent)
		l := attacker.upLink(victim.id)
		if l == nil {
			t.Fatal("the attacker's link to the victim went down")
		}
		for i := range k {
			b := getBuf()
			pl := b.payload()
			clear(pl)
			pl[0] = kindCreate
			putCirc(pl, high|(first+uint32(sent+i)))
			copy(pl[payloadHeader:], msg)
			attacker.sendPayload(l, b)
		}
		sent += k
		waitFor(t, "the victim to settle a batch of CREATEs", 60*time.Second, func() bool {
			return settled()-before >= uint64(k)
		})
	}
}

// relayCircuitsFrom counts the relay circuits victim holds whose
// previous hop is peer.
func relayCircuitsFrom(victim *Node, peer identity.ID) (from, total int) {
	victim.mu.Lock()
	defer victim.mu.Unlock()
	for k, r := range victim.routes {
		if r.c != nil && !r.fromNext && r.c.prev == k {
			total++
			if k.peer == peer {
				from++
			}
		}
	}
	return from, total
}

// One mimic floods its neighbour with CREATEs, as fast as it can (v1
// took 39,983 in 40 s, one key agreement each). With the default options
// the victim does at most a burst plus CreateRate handshakes a second for
// that link, refuses the rest before any key work, answers only a few
// refusals, holds no more than MaxCircuitsPerLink circuits for it, and
// still carries an honest tunnel from another mimic.
func TestAttackCreateFlood(t *testing.T) { synctest.Test(t, testAttackCreateFlood) }

func testAttackCreateFlood(t *testing.T) {
	const flood = 3000
	tn, taps := startTapNet(t, 6, 2, nil)
	victim := tn.nodes[0]
	attacker, honest := twoMimics(t, tn, victim)
	var replies atomic.Int64
	count := func(from identity.ID, pl []byte) {
		if from == victim.id && pl[0] == kindDestroy {
			replies.Add(1)
		}
	}
	taps[attacker.id].received.Store(&count)
	rate := victim.opts.CreateRate
	made0 := victim.Stat(EventCircuits)
	limited0, fast0 := victim.Stat(DropCreateLimit), victim.Stat(DropCreateRate)
	began := time.Now()

	floodCreates(t, attacker, victim, 1, flood)

	elapsed := time.Since(began).Seconds()
	time.Sleep(100 * time.Millisecond) // the last answers in flight
	made := victim.Stat(EventCircuits) - made0
	refused := victim.Stat(DropCreateLimit) - limited0 + victim.Stat(DropCreateRate) - fast0
	from, total := relayCircuitsFrom(victim, attacker.id)
	t.Logf("%d CREATEs from one mimic in %.2fs: %d handshakes, %d refused (%s %d, %s %d), %d answered; held %d from it, %d in all",
		flood, elapsed, made, refused, DropCreateLimit, victim.Stat(DropCreateLimit)-limited0,
		DropCreateRate, victim.Stat(DropCreateRate)-fast0, replies.Load(), from, total)
	if bound := 2*rate + rate*elapsed + 1; float64(made) > bound {
		t.Errorf("the victim did %d handshakes for one link in %.2fs, rate bound %.0f", made, elapsed, bound)
	}
	if made+refused != flood {
		t.Errorf("%d handshakes + %d refusals for %d CREATEs", made, refused, flood)
	}
	if from > victim.opts.MaxCircuitsPerLink {
		t.Errorf("the victim holds %d circuits from one link, limit %d", from, victim.opts.MaxCircuitsPerLink)
	}
	if bound := refusalReplyBurst + refusalReplyRate*(elapsed+0.1) + 1; float64(replies.Load()) > bound {
		t.Errorf("the victim answered %d refusals in %.2fs, bound %.0f", replies.Load(), elapsed, bound)
	}

	// An honest tunnel through the victim still works.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := honest.BuildTunnelPath(ctx, []identity.ID{victim.id})
	if err != nil {
		t.Fatalf("honest tunnel through the flooded victim: %v", err)
	}
	if _, err := tun.Ping(ctx, 0); err != nil {
		t.Fatalf("ping through the flooded victim: %v", err)
	}
	tun.Close()
}

// twoMimics returns two mimics of victim with their links up.
func twoMimics(t *testing.T, tn *testNet, victim *Node) (a, b *Node) {
	t.Helper()
	for _, m := range victim.Mimics() {
		switch {
		case !m.Up:
		case a == nil:
			a = tn.byID(m.ID)
		case b == nil:
			b = tn.byID(m.ID)
		}
	}
	if b == nil {
		t.Fatal("the victim has fewer than two live mimic links")
	}
	return a, b
}

// With the handshake rate out of the way, one mimic's flood fills its
// link's share of circuits and no more: the victim holds
// MaxCircuitsPerLink for it (memory bounded: about 1 KiB each), refuses
// the rest before any key work with DESTROY reason resources, and still
// carries an honest tunnel from another mimic.
func TestAttackCreateFloodCircuitLimit(t *testing.T) {
	synctest.Test(t, testAttackCreateFloodCircuitLimit)
}

func testAttackCreateFloodCircuitLimit(t *testing.T) {
	const flood = 3000
	tn := startNet(t, 6, 2, func(i int, o *Options) {
		if i == 0 {
			o.CreateRate = MaxCreateRate
		}
	})
	victim := tn.nodes[0]
	attacker, honest := twoMimics(t, tn, victim)
	limit := victim.opts.MaxCircuitsPerLink
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapAlloc
	made0, refused0 := victim.Stat(EventCircuits), victim.Stat(DropCreateLimit)

	floodCreates(t, attacker, victim, 1, flood)

	made, refused := victim.Stat(EventCircuits)-made0, victim.Stat(DropCreateLimit)-refused0
	from, total := relayCircuitsFrom(victim, attacker.id)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d CREATEs from one mimic: %d circuits made (handshakes), %d refused (%s); held %d from it, %d in all; heap %+d KiB (whole test process)",
		flood, made, refused, DropCreateLimit, from, total, (int64(ms.HeapAlloc)-int64(heap0))/1024)
	if from > limit {
		t.Errorf("the victim holds %d circuits from one link, limit %d", from, limit)
	}
	if made > uint64(limit) {
		t.Errorf("the victim did %d handshakes for one link's CREATEs, limit %d", made, limit)
	}
	if want := uint64(flood - limit); refused != want {
		t.Errorf("%s = %d, want %d", DropCreateLimit, refused, want)
	}

	time.Sleep(time.Second / refusalReplyRate * 2) // refusals are answered again
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The attacker's own next tunnel is refused, and says why.
	if _, err := attacker.BuildTunnelPath(ctx, []identity.ID{victim.id}); err == nil || !strings.Contains(err.Error(), "resources") {
		t.Errorf("a tunnel over the flooded link: %v, want a refusal for lack of resources", err)
	}
	// A relay asked to extend over the flooded link gets the refusal
	// and fails the EXTEND at once (no step timeout), saying why.
	for _, s := range tn.nodes {
		if s == attacker || s == victim || s.upLink(attacker.id) == nil {
			continue
		}
		began := time.Now()
		_, err := s.BuildTunnelPath(ctx, []identity.ID{attacker.id, victim.id})
		if err == nil || !strings.Contains(err.Error(), "out of resources") || !errors.Is(err, ErrExtendFailed) {
			t.Errorf("extending over the flooded link: %v, want EXTEND_FAILED for lack of resources", err)
		}
		if d := time.Since(began); d >= stepTimeout {
			t.Errorf("the refused extension took %v, the whole step timeout", d)
		}
		break
	}
	// An honest tunnel through the victim still works.
	tun, err := honest.BuildTunnelPath(ctx, []identity.ID{victim.id})
	if err != nil {
		t.Fatalf("honest tunnel through the flooded victim: %v", err)
	}
	if _, err := tun.Ping(ctx, 0); err != nil {
		t.Fatalf("ping through the flooded victim: %v", err)
	}
	tun.Close()
}

// Two mimics together cannot make the victim hold more than MaxCircuits
// circuits, however they split the flood.
func TestAttackCreateFloodNodeLimit(t *testing.T) { synctest.Test(t, testAttackCreateFloodNodeLimit) }

func testAttackCreateFloodNodeLimit(t *testing.T) {
	const perLink, perNode, flood = 40, 60, 200
	tn := startNet(t, 6, 2, func(i int, o *Options) {
		if i == 0 {
			o.MaxCircuitsPerLink, o.MaxCircuits = perLink, perNode
			o.CreateRate = MaxCreateRate
		}
	})
	victim := tn.nodes[0]
	ms := victim.Mimics()
	if len(ms) < 2 {
		t.Fatal("the victim has fewer than two mimics")
	}
	a1, a2 := tn.byID(ms[0].ID), tn.byID(ms[1].ID)
	floodCreates(t, a1, victim, 1, flood)
	floodCreates(t, a2, victim, 1, flood)
	from1, total := relayCircuitsFrom(victim, a1.id)
	from2, _ := relayCircuitsFrom(victim, a2.id)
	t.Logf("held %d + %d = %d; %s = %d", from1, from2, total, DropCreateLimit, victim.Stat(DropCreateLimit))
	if from1 > perLink || from2 > perLink || total > perNode {
		t.Errorf("held %d and %d (%d in all), limits %d per link and %d per node", from1, from2, total, perLink, perNode)
	}
	if got, want := victim.Stat(DropCreateLimit), uint64(2*flood-perNode); got != want {
		t.Errorf("%s = %d, want %d", DropCreateLimit, got, want)
	}
	if _, err := New(Options{Identity: victim.opts.Identity, Transport: tn.net.NewTransport(), Listen: addrOf(9),
		Discovery: newListDiscovery(nil), MaxCircuitsPerLink: 10, MaxCircuits: 5}); err == nil {
		t.Error("MaxCircuits below MaxCircuitsPerLink accepted")
	}
	if _, err := New(Options{Identity: victim.opts.Identity, Transport: tn.net.NewTransport(), Listen: addrOf(9),
		Discovery: newListDiscovery(nil), CreateRate: -1}); err == nil {
		t.Error("a negative CreateRate accepted")
	}
}
