package ipservice

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// With Options.FairQueueInline, push sends at once while nothing is
// queued and try takes the packet; once try refuses, packets queue, and
// no later packet overtakes them inline until the sender has sent them.
func TestFairQueueInlineKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var order []int
		room := false
		done := make(chan struct{})
		release := make(chan struct{})
		q := newFairQueue(done, fqLimit, func(items []fqItem[int]) {
			for _, it := range items {
				mu.Lock()
				order = append(order, it.to)
				mu.Unlock()
			}
		}, func() {})
		q.try = func(to int, _ []byte, _ ippkt.Info) bool {
			mu.Lock()
			defer mu.Unlock()
			if room {
				order = append(order, to)
			}
			return room
		}
		q.room = func(int) { <-release }
		var wg sync.WaitGroup
		wg.Go(q.run)
		pkt := make([]byte, 100)
		room = true
		q.push(1, 1, pkt, flowInfo(1)) // inline
		mu.Lock()
		room = false
		mu.Unlock()
		q.push(1, 2, pkt, flowInfo(1)) // refused: queued
		q.kick()
		synctest.Wait() // the sender popped 2 and waits for room
		mu.Lock()
		room = true
		mu.Unlock()
		q.push(1, 3, pkt, flowInfo(1)) // 2 is not sent yet: queued, not inline
		q.kick()
		close(release)
		synctest.Wait()
		mu.Lock()
		got := append([]int(nil), order...)
		mu.Unlock()
		if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Errorf("sent in the order %v, want [1 2 3]", got)
		}
		close(done)
		q.kick()
		wg.Wait()
	})
}
