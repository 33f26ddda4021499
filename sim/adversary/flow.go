package adversary

import "time"

// Flow is one anonymous flow: ground truth for scoring plus what the
// adversary sees at the exit.
//
// The adversary never reads Initiator; only Evaluate does (through
// Truth). Exit, Start, End, Up and Down are visible to it: it watches the
// exit's cleartext connection to the destination server.
type Flow struct {
	Initiator int // true originator (ground truth)
	Exit      int // the tunnel's exit node

	// Start and End bound the cleartext connection (offsets from the
	// trace origin). When End ≤ Start they are taken from the first and
	// last non-empty bins of Up and Down.
	Start, End time.Duration

	// Up is the exit → server cleartext volume per trace bin (bytes, or
	// packets: any per-bin volume), indexed like the Trace's bins from
	// bin 0; Down is server → exit and may be nil. Bins past the end of
	// a slice are empty.
	Up, Down []float64
}

// AddUp adds bytes sent by the exit to the server at offset at, for a
// trace of bin width bin.
func (f *Flow) AddUp(bin, at time.Duration, bytes int) { f.Up = addAt(f.Up, bin, at, bytes) }

// AddDown adds bytes received by the exit from the server at offset at.
func (f *Flow) AddDown(bin, at time.Duration, bytes int) { f.Down = addAt(f.Down, bin, at, bytes) }

func addAt(s []float64, bin, at time.Duration, v int) []float64 {
	if at < 0 || bin <= 0 {
		return s
	}
	b := int(at / bin)
	if b >= MaxBins {
		return s
	}
	if b >= len(s) {
		s = append(s, make([]float64, b+1-len(s))...)
	}
	s[b] += float64(v)
	return s
}

// Truth returns the true initiator of every flow, for Evaluate.
func Truth(flows []Flow) []int {
	out := make([]int, len(flows))
	for i, f := range flows {
		out[i] = f.Initiator
	}
	return out
}

// window returns the flow's active bins [lo, hi), or hi ≤ lo when it has
// none.
func (f *Flow) window(bin time.Duration) (lo, hi int) {
	if f.End > f.Start {
		return int(max(f.Start, 0) / bin), int(f.End/bin) + 1
	}
	lo, hi = -1, -1
	for _, s := range [][]float64{f.Up, f.Down} {
		for i, v := range s {
			if v != 0 {
				if lo < 0 || i < lo {
					lo = i
				}
				hi = max(hi, i+1)
			}
		}
	}
	if lo < 0 {
		return 0, 0
	}
	return lo, hi
}
