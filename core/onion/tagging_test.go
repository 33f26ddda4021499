package onion

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// Attack: a hop marks a cell it passes on (any byte, the slot's counter and
// tag included) so that a colluding hop further along can recognise it.
// Forward, the next hop must drop the marked cell; backward, the initiator
// must. A marked counter must not move any replay window or key state: the
// genuine cell is still accepted afterwards.
func TestTaggingByOneHopIsCaught(t *testing.T) {
	refused := func(err error, pos int) bool {
		if pos < 4 { // the counter field: an unknown or old counter may be counted as a replay
			return errors.Is(err, ErrTagMismatch) || errors.Is(err, ErrReplay)
		}
		return errors.Is(err, ErrTagMismatch)
	}
	t.Run("forward", func(t *testing.T) {
		c := newCircuit(t, 3)
		for k := 1; k <= 2; k++ { // hop k−1 (0-based) marks what it sends to hop k
			cell := make([]byte, CellSize)
			if err := c.path.Seal(cell, 2, testPayload("mark", 300), nil); err != nil {
				t.Fatal(err)
			}
			for i := range k {
				if _, _, err := c.relays[i].Forward(cell); err != nil {
					t.Fatal(err)
				}
			}
			var flips []func([]byte)
			for pos := range CellSize {
				flips = append(flips, func(b []byte) { b[pos] ^= 1 << (pos % 8) }, func(b []byte) { b[pos] ^= 0xff })
			}
			for bit := range 32 {
				flips = append(flips, func(b []byte) { b[bit/8] ^= 0x80 >> (bit % 8) })
			}
			for n, flip := range flips {
				bad := bytes.Clone(cell)
				flip(bad)
				at := firstDiff(bad, cell)
				local, _, err := c.relays[k].Forward(bad)
				if !refused(err, at) {
					t.Fatalf("hop %d let through a cell marked at byte %d (flip %d): local=%v err=%v", k+1, at, n, local, err)
				}
			}
			if _, _, err := c.relays[k].Forward(cell); err != nil {
				t.Fatalf("hop %d refused the genuine cell after the marked ones: %v", k+1, err)
			}
		}
	})
	t.Run("backward", func(t *testing.T) {
		for _, n := range []int{3, 4} {
			c := newCircuit(t, n)
			from := n - 1
			// link k carries the cell from hop k to hop k−1 (0-based; k = 0:
			// to the initiator); the hop sending on it marks the cell.
			for k := from; k >= 0; k-- {
				for _, at := range markPositions() {
					cell := make([]byte, CellSize)
					if err := c.relays[from].Originate(cell, []byte(fmt.Sprint("answer", at)), nil); err != nil {
						t.Fatal(err)
					}
					for i := from - 1; i >= k; i-- {
						c.relays[i].Backward(cell)
					}
					genuine := bytes.Clone(cell)
					cell[at.pos] ^= at.mask
					for i := k - 1; i >= 0; i-- {
						c.relays[i].Backward(cell)
						c.relays[i].Backward(genuine)
					}
					if _, _, err := c.path.Open(cell); !refused(err, at.pos) {
						t.Fatalf("%d hops: the initiator accepted a cell marked at byte %d on link %d: %v", n, at.pos, k, err)
					}
					if hop, _, err := c.path.Open(genuine); err != nil || hop != from {
						t.Fatalf("%d hops: genuine cell after a marked one on link %d: hop %d err %v", n, k, hop, err)
					}
				}
			}
		}
	})
}

type mark struct {
	pos  int
	mask byte
}

// markPositions: every bit of the slot, and a spread of bytes over the
// authenticated body (the first PayloadSize bytes; what lies after them is
// random padding that each relay truncates, see TestBackwardTailNotDelivered).
func markPositions() []mark {
	var m []mark
	for bit := range 8 * SlotSize {
		m = append(m, mark{bit / 8, 0x80 >> (bit % 8)})
	}
	for pos := SlotSize; pos < SlotSize+PayloadSize; pos += 7 {
		m = append(m, mark{pos, 0xff})
	}
	return m
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
