package node

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// tagMark is what colluding hops write into the reserved bytes of the
// link header: a one-bit channel would do, three bytes carry a circuit
// label.
var tagMark = [3]byte{0xa5, 0x5a, 0x01}

func hasMark(pl []byte) bool {
	return pl[1] == tagMark[0] && pl[2] == tagMark[1] && pl[3] == tagMark[2]
}

// An entry and an exit that collude try to mark a circuit through an
// honest middle hop by the reserved bytes of the link header (PROTOCOL
// §4.2), in both directions: the entry marks the forward cells it relays
// to the middle and watches the backward cells the middle relays to it;
// the exit does the converse. The middle is the real relay code. It must
// never pass the mark on, and must drop and count the marked payloads.
func TestAttackTagReservedBytes(t *testing.T) { synctest.Test(t, testAttackTagReservedBytes) }

func testAttackTagReservedBytes(t *testing.T) {
	tn, taps := startTapNet(t, 10, 3, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	hops := tun.Hops()
	entry, middle, exit := tn.byID(hops[0].ID), tn.byID(hops[1].ID), tn.byID(hops[2].ID)

	var marked, fwdSeen, bwdSeen atomic.Int64
	mark := func(to identity.ID, kind byte) func(identity.ID, []byte) {
		return func(peer identity.ID, pl []byte) {
			if peer == to && pl[0] == kind {
				copy(pl[1:4], tagMark[:])
				marked.Add(1)
			}
		}
	}
	watch := func(from identity.ID, kind byte, seen *atomic.Int64) func(identity.ID, []byte) {
		return func(peer identity.ID, pl []byte) {
			if peer == from && pl[0] == kind && hasMark(pl) {
				seen.Add(1)
			}
		}
	}
	// Pings to the exit cross the middle forward and, answered, backward.
	ping := func() {
		for range 5 {
			pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			tun.Ping(pctx, 2)
			pcancel()
		}
	}
	entrySend, exitRecv := mark(middle.id, kindRelayFwd), watch(middle.id, kindRelayFwd, &fwdSeen)
	exitSend, entryRecv := mark(middle.id, kindRelayBwd), watch(middle.id, kindRelayBwd, &bwdSeen)
	taps[exit.id].received.Store(&exitRecv)
	taps[entry.id].received.Store(&entryRecv)

	// Forward: the entry marks what it relays to the middle.
	dropped0 := middle.Stat(DropReservedBytes)
	taps[entry.id].sending.Store(&entrySend)
	ping()
	waitFor(t, "forward payloads marked", 5*time.Second, func() bool { return marked.Load() >= 5 })
	time.Sleep(200 * time.Millisecond) // let whatever the middle passes on arrive
	taps[entry.id].sending.Store(nil)
	fwdMarked, fwdDropped := marked.Load(), middle.Stat(DropReservedBytes)-dropped0

	// Backward: the exit marks the answers it sends to the middle.
	dropped0 = middle.Stat(DropReservedBytes)
	taps[exit.id].sending.Store(&exitSend)
	ping()
	waitFor(t, "backward payloads marked", 5*time.Second, func() bool { return marked.Load() >= fwdMarked+5 })
	time.Sleep(200 * time.Millisecond)
	taps[exit.id].sending.Store(nil)
	bwdMarked, bwdDropped := marked.Load()-fwdMarked, middle.Stat(DropReservedBytes)-dropped0

	t.Logf("forward: %d payloads marked, the exit read the mark %d times, the middle dropped %d; backward: %d marked, the entry read it %d times, the middle dropped %d (%s)",
		fwdMarked, fwdSeen.Load(), fwdDropped, bwdMarked, bwdSeen.Load(), bwdDropped, DropReservedBytes)
	if fwdSeen.Load() != 0 {
		t.Errorf("the exit read the entry's mark %d times through the honest middle", fwdSeen.Load())
	}
	if bwdSeen.Load() != 0 {
		t.Errorf("the entry read the exit's mark %d times through the honest middle", bwdSeen.Load())
	}
	if fwdDropped == 0 || bwdDropped == 0 {
		t.Errorf("the middle counted %d forward and %d backward marked payloads under %s, want both > 0",
			fwdDropped, bwdDropped, DropReservedBytes)
	}
}
