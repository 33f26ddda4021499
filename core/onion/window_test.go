package onion

import (
	"errors"
	"testing"
)

func TestWindow(t *testing.T) {
	var w window
	accept := func(seq uint32, ok bool) {
		t.Helper()
		err := w.accept(seq)
		if ok && err != nil || !ok && !errors.Is(err, ErrReplay) {
			t.Fatalf("seq %d: err %v, want ok=%v", seq, err, ok)
		}
	}
	accept(0, false)
	accept(1, true)
	accept(1, false)
	accept(3, true)
	accept(2, true)
	accept(2, false)
	accept(200, true) // jump clears whole words in between
	for s := uint32(4); s < 200; s++ {
		accept(s, true)
	}
	accept(100, false)
	accept(200+windowSize-1, true)
	accept(200, false) // windowSize−1 behind: still inside, seen
	accept(199, false) // windowSize behind: too old
	accept(201, true)  // never seen, inside
	accept(201, false)
	accept(200+windowSize+5000, true) // far jump forgets everything
	accept(200+windowSize-1, false)   // too old now
	accept(5200+1, true)              // oldest inside the window, unseen
	accept(^uint32(0), true)
	accept(^uint32(0), false)
	accept(^uint32(0)-1, true)
}

// Seen bits must not leak from one lap of the ring to the next.
func TestWindowSlidesCleanly(t *testing.T) {
	var w window
	for s := uint32(1); s <= 3*windowSize; s += 3 {
		if err := w.accept(s); err != nil {
			t.Fatalf("seq %d: %v", s, err)
		}
	}
	top := w.top
	for s := top - windowSize + 1; s <= top; s++ {
		want := (s-1)%3 == 0
		if got := w.check(s) != nil; got != want {
			t.Fatalf("seq %d: seen=%v want %v", s, got, want)
		}
	}
}
