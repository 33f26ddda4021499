package onion

import (
	"bytes"
	"testing"
)

// Attack: an adversary records the cells a relay receives, and later seizes
// the relay's memory (its circuit state) while the circuit is still up. It
// must not be able to decrypt or authenticate cells from two key
// generations back: the keys that protected them are gone.
func TestSeizedRelayCannotOpenOldCells(t *testing.T) {
	// Control: one generation on, the relay still holds the recorded
	// cell's keys (its replay window may still need them), and the attack
	// works; so the check below can fail.
	if _, ok := seizeAfter(t, fsCellsLater/2); !ok {
		t.Fatal("control: the seized relay does not open a cell of the previous generation; the attack is broken")
	}
	if payload, ok := seizeAfter(t, fsCellsLater); ok {
		t.Fatalf("after %d more cells the seized relay still opens the recorded cell (payload %q)",
			fsCellsLater, bytes.TrimRight(payload[:40], "\x00"))
	}
}

// seizeAfter records a cell at relay 0, passes later more cells through it,
// then seizes it and tries to open the recorded cell.
func seizeAfter(t *testing.T, later int) ([]byte, bool) {
	c := newCircuit(t, 2)
	r := c.relays[0]
	recorded := make([]byte, CellSize)
	secret := []byte("recorded before the seizure")
	if err := c.path.Seal(recorded, 0, secret, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Forward(bytes.Clone(recorded)); err != nil {
		t.Fatal(err)
	}
	cell := make([]byte, CellSize)
	for i := range later {
		if err := c.path.Seal(cell, i%2, nil, zeroReader{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Forward(cell); err != nil {
			t.Fatalf("cell %d: %v", i, err)
		}
	}
	// The attacker holds r: it may ignore the replay window and try every
	// key material the relay still holds.
	return seizedRelayOpens(r, bytes.Clone(recorded))
}
