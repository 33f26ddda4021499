package node

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// batchTap records, for each write of link data frames, when it was made
// and how many frames it carried.
type batchTap struct {
	transport.Transport
	mu      sync.Mutex
	batches []tappedBatch
}

type tappedBatch struct {
	at     time.Time
	frames int
}

func (t *batchTap) WriteBatch(pkts []transport.Packet) error {
	n := 0
	for _, p := range pkts {
		if p.N == link.FrameSize && p.Buf[0] == link.TypeData {
			n++
		}
	}
	if n > 0 {
		t.mu.Lock()
		t.batches = append(t.batches, tappedBatch{at: time.Now(), frames: n})
		t.mu.Unlock()
	}
	return t.Transport.WriteBatch(pkts)
}

func (t *batchTap) take() []tappedBatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.batches
	t.batches = nil
	return b
}

// sleepPastInstant sleeps until half an interval after the next multiple
// of every (a keepalive instant), so that a window starting there holds
// whole instants.
func sleepPastInstant(every time.Duration) {
	now := time.Now().UnixNano()
	time.Sleep(every - time.Duration(now%int64(every)) + every/2)
}

// An idle node's keepalives leave together: at each keepalive instant (a
// multiple of KeepaliveInterval), one keepalive on every up link, in one
// write; nothing in between.
func TestKeepalivesLeaveTogether(t *testing.T) { synctest.Test(t, testKeepalivesLeaveTogether) }

func testKeepalivesLeaveTogether(t *testing.T) {
	var tap *batchTap
	tn := startNet(t, 6, 2, func(i int, o *Options) {
		if i == 0 {
			tap = &batchTap{Transport: o.Transport}
			o.Transport = tap
		}
	})
	src := tn.nodes[0]
	every := src.opts.KeepaliveInterval
	if every != src.opts.LinkTimeout/3 {
		t.Fatalf("KeepaliveInterval %v, want LinkTimeout/3 = %v by default", every, src.opts.LinkTimeout/3)
	}
	sleepPastInstant(every)
	tap.take()
	const instants = 6
	time.Sleep(instants * every)
	batches := tap.take()
	up := src.Status().LinksUp
	if up < 2 {
		t.Fatalf("%d links up, want at least 2", up)
	}
	if len(batches) != instants {
		t.Fatalf("%d writes of data frames in %d keepalive intervals, want %d (one per instant): %+v", len(batches), instants, instants, batches)
	}
	for _, b := range batches {
		if off := time.Duration(b.at.UnixNano() % int64(every)); off != 0 {
			t.Errorf("keepalives written %v after an instant, want at it", off)
		}
		if b.frames != up {
			t.Errorf("a keepalive write carried %d frames, want one per up link (%d)", b.frames, up)
		}
	}
}

// A link that carried traffic sends its keepalive at the first instant at
// least half an interval after its last frame; its peer keeps hearing it,
// and a peer that goes away is still dropped within LinkTimeout (plus a
// maintenance round).
func TestKeepalivesKeepLinksAndDeadLinksDrop(t *testing.T) {
	synctest.Test(t, testKeepalivesKeepLinksAndDeadLinksDrop)
}

func testKeepalivesKeepLinksAndDeadLinksDrop(t *testing.T) {
	tn := startNet(t, 5, 2, nil)
	src := tn.nodes[0]
	timeout := src.opts.LinkTimeout
	// Idle for several LinkTimeouts: no link goes down (none is
	// established again, and every one is up whenever we look).
	ups := func() uint64 {
		var s uint64
		for _, n := range tn.nodes {
			s += n.Stat(EventLinksUp)
		}
		return s
	}
	before := ups()
	for end := time.Now().Add(4 * timeout); time.Now().Before(end); time.Sleep(time.Second) {
		for _, n := range tn.nodes {
			for _, m := range n.Mimics() {
				if !m.Up {
					t.Fatalf("%s: link to %s down on an idle network", n.id.Short(), m.ID.Short())
				}
			}
		}
	}
	if d := ups() - before; d != 0 {
		t.Fatalf("%d links established again on an idle network kept by keepalives", d)
	}
	// A peer that stops: every node that had a link to it drops it
	// within LinkTimeout of its last frame.
	var gone *Node
	for _, m := range src.Mimics() {
		gone = tn.byID(m.ID)
		break
	}
	gone.Close()
	gone.Wait()
	stopped := time.Now()
	waitFor(t, "the link to the stopped peer dropped", 2*timeout, func() bool {
		for _, m := range src.Mimics() {
			if m.ID == gone.id && m.Up {
				return false
			}
		}
		return true
	})
	// Its last frame left at most 1.5 keepalive intervals before it stopped.
	if took := time.Since(stopped); took > timeout+src.settledInterval() {
		t.Errorf("the dead link was dropped %v after its peer stopped, want within LinkTimeout %v (+ a round)", took, timeout)
	}
}
