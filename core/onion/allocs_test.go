//go:build !race

package onion

import "testing"

// The per-cell paths must not allocate (the race detector does, hence the
// build tag).
func TestCellPathsDoNotAllocate(t *testing.T) {
	c := newCircuit(t, 3)
	cell := make([]byte, CellSize)
	payload := testPayload("allocs", 200)
	zero := zeroReader{}
	if n := testing.AllocsPerRun(100, func() {
		if err := c.path.Seal(cell, 2, payload, zero); err != nil {
			t.Fatal(err)
		}
		for _, r := range c.relays {
			if _, _, err := r.Forward(cell); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.relays[2].Originate(cell, payload, zero); err != nil {
			t.Fatal(err)
		}
		c.relays[1].Backward(cell)
		c.relays[0].Backward(cell)
		if _, _, err := c.path.Open(cell); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per round trip", n)
	}
}
