package onion

// windowSize is the replay window in sequence numbers. Cells may arrive up
// to this far out of order (links are datagrams and a tunnel may be fed by
// several goroutines).
const windowSize = 2048

const windowWords = windowSize / 64

// window is a sliding replay window over 32-bit sequence numbers (seq 0 is
// never valid). Not safe for concurrent use; owners lock.
type window struct {
	top  uint32 // highest sequence number accepted
	seen [windowWords]uint64
}

// check reports ErrReplay for a duplicate or too-old seq without changing
// the window.
func (w *window) check(seq uint32) error {
	switch {
	case seq == 0:
		return ErrReplay
	case seq > w.top:
		return nil
	case w.top-seq >= windowSize:
		return ErrReplay
	case w.seen[(seq/64)%windowWords]&(1<<(seq%64)) != 0:
		return ErrReplay
	}
	return nil
}

// accept checks seq and, if fresh, records it.
func (w *window) accept(seq uint32) error {
	if err := w.check(seq); err != nil {
		return err
	}
	if seq > w.top {
		w.advance(seq)
	}
	w.seen[(seq/64)%windowWords] |= 1 << (seq % 64)
	return nil
}

// advance slides the window so that seq is its top, forgetting the slots
// that now stand for sequence numbers top+1..seq.
func (w *window) advance(seq uint32) {
	if seq-w.top >= windowSize {
		w.seen = [windowWords]uint64{}
	} else {
		for k := uint64(w.top) + 1; k <= uint64(seq); {
			if k%64 == 0 && uint64(seq)-k >= 63 {
				w.seen[(k/64)%windowWords] = 0
				k += 64
				continue
			}
			w.seen[(k/64)%windowWords] &^= 1 << (k % 64)
			k++
		}
	}
	w.top = seq
}
