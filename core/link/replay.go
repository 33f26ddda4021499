package link

// Sliding-window replay filter after RFC 6479, as in WireGuard: a ring of
// 64-bit blocks; moving the window forward clears whole blocks.
const (
	replayBlockBits  = 64
	replayRingBlocks = 128 // 8192 bits = 1 KiB per session
	// ReplayWindow is how far behind the newest counter a frame may be
	// and still be accepted (once): 8128 counters.
	ReplayWindow = (replayRingBlocks - 1) * replayBlockBits
)

type replayWindow struct {
	last uint64 // newest counter accepted
	ring [replayRingBlocks]uint64
}

// check records counter and reports whether it was new and inside the
// window. The caller holds the session lock.
func (w *replayWindow) check(counter uint64) bool {
	block := counter / replayBlockBits
	if counter > w.last {
		cur := w.last / replayBlockBits
		diff := block - cur
		if diff > replayRingBlocks {
			diff = replayRingBlocks
		}
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i%replayRingBlocks] = 0
		}
		w.last = counter
	} else if w.last-counter > ReplayWindow {
		return false
	}
	bit := uint64(1) << (counter % replayBlockBits)
	i := block % replayRingBlocks
	old := w.ring[i]
	w.ring[i] = old | bit
	return old&bit == 0
}
