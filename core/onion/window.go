package onion

// windowSize is the replay window in counters. Cells may arrive up
// to this far out of order (links are datagrams and a tunnel may be fed by
// several goroutines).
const windowSize = 2048

const windowWords = windowSize / 64

// window is a sliding replay window over 32-bit counters (counter 0 is
// never valid). Not safe for concurrent use; owners lock.
type window struct {
	top  uint32 // highest counter accepted
	seen [windowWords]uint64
}

// check reports ErrReplay for a duplicate or too-old c without changing
// the window.
func (w *window) check(c uint32) error {
	switch {
	case c == 0:
		return ErrReplay
	case c > w.top:
		return nil
	case w.top-c >= windowSize:
		return ErrReplay
	case w.seen[(c/64)%windowWords]&(1<<(c%64)) != 0:
		return ErrReplay
	}
	return nil
}

// accept checks c and, if fresh, records it.
func (w *window) accept(c uint32) error {
	if err := w.check(c); err != nil {
		return err
	}
	if c > w.top {
		w.advance(c)
	}
	w.seen[(c/64)%windowWords] |= 1 << (c % 64)
	return nil
}

// advance slides the window so that c is its top, forgetting the slots
// that now stand for counters top+1..c.
func (w *window) advance(c uint32) {
	if c-w.top >= windowSize {
		w.seen = [windowWords]uint64{}
	} else {
		for k := uint64(w.top) + 1; k <= uint64(c); {
			if k%64 == 0 && uint64(c)-k >= 63 {
				w.seen[(k/64)%windowWords] = 0
				k += 64
				continue
			}
			w.seen[(k/64)%windowWords] &^= 1 << (k % 64)
			k++
		}
	}
	w.top = c
}
