package onion

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestForwardDeliveredAtEveryHop(t *testing.T) {
	for n := 1; n <= MaxHops; n++ {
		for j := range n {
			for _, size := range []int{0, 1, 100, PayloadSize} {
				t.Run(fmt.Sprintf("hops%d/to%d/size%d", n, j, size), func(t *testing.T) {
					c := newCircuit(t, n)
					payload := testPayload(t.Name(), size)
					cell := make([]byte, CellSize)
					if err := c.path.Seal(cell, j, payload, nil); err != nil {
						t.Fatal(err)
					}
					for i := range j {
						local, _, err := c.relays[i].Forward(cell)
						if err != nil || local {
							t.Fatalf("hop %d: local=%v err=%v, want relayed", i, local, err)
						}
					}
					local, got, err := c.relays[j].Forward(cell)
					if err != nil || !local {
						t.Fatalf("hop %d: local=%v err=%v, want delivered", j, local, err)
					}
					if !bytes.Equal(got, padded(payload)) {
						t.Fatalf("hop %d: payload differs", j)
					}
				})
			}
		}
	}
}

func TestBackwardOpenedFromEveryHop(t *testing.T) {
	for n := 1; n <= MaxHops; n++ {
		for j := range n {
			t.Run(fmt.Sprintf("hops%d/from%d", n, j), func(t *testing.T) {
				c := newCircuit(t, n)
				for round, size := range []int{0, 7, PayloadSize} {
					payload := testPayload(fmt.Sprint(t.Name(), round), size)
					cell := c.backwardFrom(t, j, payload)
					hop, got, err := c.path.Open(cell)
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					if hop != j || !bytes.Equal(got, padded(payload)) {
						t.Fatalf("round %d: hop %d, payload equal %v; want hop %d and the payload", round, hop, bytes.Equal(got, padded(payload)), j)
					}
				}
			})
		}
	}
}

func TestPayloadMayAliasCell(t *testing.T) {
	c := newCircuit(t, 3)
	cell := make([]byte, CellSize)
	want := testPayload("alias", 500)
	copy(cell[100:], want)
	if err := c.path.Seal(cell, 2, cell[100:600], nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		local, got, err := c.relays[i].Forward(cell)
		if err != nil {
			t.Fatal(err)
		}
		if local && (i != 2 || !bytes.Equal(got, padded(want))) {
			t.Fatalf("hop %d delivered wrong payload", i)
		}
	}
	copy(cell[SlotSize:], want)
	if err := c.relays[1].Originate(cell, cell[SlotSize:SlotSize+500], nil); err != nil {
		t.Fatal(err)
	}
	if err := c.relays[0].Backward(cell); err != nil {
		t.Fatal(err)
	}
	if hop, got, err := c.path.Open(cell); err != nil || hop != 1 || !bytes.Equal(got, padded(want)) {
		t.Fatalf("open: hop %d err %v", hop, err)
	}
}

// Any single-byte change on any link toward the exit is caught by the next
// hop, including the filler and padding areas.
func TestForwardTaggingDetected(t *testing.T) {
	for n := 1; n <= MaxHops; n++ {
		for j := range n {
			c := newCircuit(t, n)
			cell := make([]byte, CellSize)
			if err := c.path.Seal(cell, j, testPayload("tag", 300), nil); err != nil {
				t.Fatal(err)
			}
			for k := 0; k <= j; k++ { // the link into hop k
				for pos := range CellSize {
					bad := bytes.Clone(cell)
					bad[pos] ^= 0x01 << (pos % 8)
					if _, _, err := c.relays[k].Forward(bad); !errors.Is(err, ErrTagMismatch) {
						t.Fatalf("hops %d to %d: flip at %d into hop %d: err %v, want ErrTagMismatch", n, j, pos, k, err)
					}
				}
				if _, _, err := c.relays[k].Forward(cell); err != nil {
					t.Fatalf("hop %d refused the untouched cell after rejecting forgeries: %v", k, err)
				}
			}
		}
	}
}

// Any single-byte change in the slot or the authenticated body (the first
// PayloadSize bytes) on any link toward the initiator is caught by Open.
func TestBackwardTaggingDetected(t *testing.T) {
	for n := 1; n <= MaxHops; n++ {
		for j := range n {
			c := newCircuit(t, n)
			payload := testPayload("btag", 200)
			// link k carries the cell from hop k to hop k−1 (k = 0: to the initiator).
			for k := 0; k <= j; k++ {
				for pos := 0; pos < SlotSize+PayloadSize; pos += 1 + pos%5 {
					cell := make([]byte, CellSize)
					if err := c.relays[j].Originate(cell, payload, nil); err != nil {
						t.Fatal(err)
					}
					for i := j - 1; i >= k; i-- {
						c.relays[i].Backward(cell)
					}
					cell[pos] ^= 0x80 >> (pos % 8)
					for i := k - 1; i >= 0; i-- {
						c.relays[i].Backward(cell)
					}
					if _, _, err := c.path.Open(cell); !errors.Is(err, ErrTagMismatch) {
						t.Fatalf("hops %d from %d: flip at %d on link %d: err %v, want ErrTagMismatch", n, j, pos, k, err)
					}
				}
			}
			// The path still opens genuine cells afterwards.
			if hop, _, err := c.path.Open(c.backwardFrom(t, j, payload)); err != nil || hop != j {
				t.Fatalf("after forgeries: hop %d err %v", hop, err)
			}
		}
	}
}

// Bytes past PayloadSize of a backward body are padding that relays truncate;
// they are not authenticated, and changing them changes nothing delivered.
func TestBackwardTailNotDelivered(t *testing.T) {
	c := newCircuit(t, 3)
	payload := testPayload("tail", PayloadSize)
	cell := make([]byte, CellSize)
	if err := c.relays[2].Originate(cell, payload, nil); err != nil {
		t.Fatal(err)
	}
	cell[SlotSize+PayloadSize+3] ^= 0xff
	c.relays[1].Backward(cell)
	c.relays[0].Backward(cell)
	hop, got, err := c.path.Open(cell)
	if err != nil || hop != 2 || !bytes.Equal(got, payload) {
		t.Fatalf("hop %d err %v", hop, err)
	}
}

func TestForwardReplayRejected(t *testing.T) {
	c := newCircuit(t, 2)
	cell := make([]byte, CellSize)
	if err := c.path.Seal(cell, 1, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	copyAt0 := bytes.Clone(cell)
	if _, _, err := c.relays[0].Forward(cell); err != nil {
		t.Fatal(err)
	}
	copyAt1 := bytes.Clone(cell)
	if _, _, err := c.relays[1].Forward(cell); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.relays[0].Forward(bytes.Clone(copyAt0)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay at hop 0: %v", err)
	}
	if _, _, err := c.relays[1].Forward(copyAt1); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay at hop 1: %v", err)
	}
}

func TestForwardOutOfOrderAndTooOld(t *testing.T) {
	c := newCircuit(t, 1)
	var cells [][]byte
	for range windowSize + 10 {
		cell := make([]byte, CellSize)
		if err := c.path.Seal(cell, 0, nil, nil); err != nil {
			t.Fatal(err)
		}
		cells = append(cells, cell)
	}
	r := c.relays[0]
	last := len(cells) - 1
	// Within the window, any order is accepted once.
	for _, i := range []int{100, 5, 50, 6, 99} {
		if _, _, err := r.Forward(bytes.Clone(cells[i])); err != nil {
			t.Fatalf("cell %d: %v", i, err)
		}
	}
	if _, _, err := r.Forward(bytes.Clone(cells[50])); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, _, err := r.Forward(bytes.Clone(cells[last])); err != nil {
		t.Fatal(err)
	}
	// counter = index+1; the window keeps (top−windowSize, top].
	if _, _, err := r.Forward(bytes.Clone(cells[last-windowSize])); !errors.Is(err, ErrReplay) {
		t.Fatalf("too old: %v", err)
	}
	if _, _, err := r.Forward(bytes.Clone(cells[last-windowSize+1])); err != nil {
		t.Fatalf("oldest in window: %v", err)
	}
}

func TestBackwardReplayRejected(t *testing.T) {
	c := newCircuit(t, 3)
	// The initiator sees the very same cell twice.
	cell := c.backwardFrom(t, 2, []byte("a"))
	dup := bytes.Clone(cell)
	if _, _, err := c.path.Open(cell); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.path.Open(dup); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate at initiator: %v", err)
	}
	// A cell replayed between hops gets a fresh outer layer; the inner
	// counter gives it away.
	inner := make([]byte, CellSize)
	if err := c.relays[2].Originate(inner, []byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		cell := bytes.Clone(inner)
		c.relays[1].Backward(cell)
		c.relays[0].Backward(cell)
		_, _, err := c.path.Open(cell)
		if round == 0 && err != nil {
			t.Fatal(err)
		}
		if round == 1 && !errors.Is(err, ErrReplay) {
			t.Fatalf("replay into hop 1: %v", err)
		}
	}
}

func TestBackwardOutOfOrder(t *testing.T) {
	c := newCircuit(t, 2)
	var cells [][]byte
	for i := range 5 {
		cells = append(cells, c.backwardFrom(t, i%2, []byte{byte(i)}))
	}
	for _, i := range []int{4, 0, 2, 1, 3} {
		hop, got, err := c.path.Open(cells[i])
		if err != nil || hop != i%2 || got[0] != byte(i) {
			t.Fatalf("cell %d: hop %d err %v", i, hop, err)
		}
	}
}

// A hop that is not the target cannot tell a cell for a hop beyond it from
// one it should relay: Forward reports !local, and a hop with no next hop
// drops it (the relay engine reports ErrNotForUs).
func TestCellBeyondLastHopIsNotLocal(t *testing.T) {
	c := newCircuit(t, 3)
	cell := make([]byte, CellSize)
	if err := c.path.Seal(cell, 2, []byte("for hop 2"), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // hop 1 plays a last hop that has no successor
		local, payload, err := c.relays[i].Forward(cell)
		if err != nil || local || payload != nil {
			t.Fatalf("hop %d: local=%v payload=%v err=%v", i, local, payload != nil, err)
		}
	}
}

func TestSealAndOpenErrors(t *testing.T) {
	c := newCircuit(t, 2)
	cell := make([]byte, CellSize)
	if err := c.path.Seal(cell[:CellSize-1], 0, nil, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("short cell: %v", err)
	}
	if err := c.path.Seal(cell, 0, make([]byte, PayloadSize+1), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("long payload: %v", err)
	}
	for _, hop := range []int{-1, 2} {
		if err := c.path.Seal(cell, hop, nil, nil); !errors.Is(err, ErrNoSuchHop) {
			t.Errorf("hop %d: %v", hop, err)
		}
	}
	if err := NewPath().Seal(cell, 0, nil, nil); !errors.Is(err, ErrNoSuchHop) {
		t.Errorf("empty path: %v", err)
	}
	if _, _, err := c.path.Open(cell[:10]); !errors.Is(err, ErrMalformed) {
		t.Errorf("open short: %v", err)
	}
	if _, _, err := c.relays[0].Forward(make([]byte, CellSize+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("forward long: %v", err)
	}
	if err := c.relays[0].Backward(cell[:1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("backward short: %v", err)
	}
	if err := c.relays[0].Originate(cell, make([]byte, PayloadSize+1), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("originate long: %v", err)
	}
	p := NewPath()
	for i := range MaxHops {
		if err := p.AddHop(testKeys(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.AddHop(testKeys("x")); !errors.Is(err, ErrTooManyHops) {
		t.Errorf("fifth hop: %v", err)
	}
	if _, _, err := NewPath().Open(cell); !errors.Is(err, ErrTagMismatch) {
		t.Errorf("open on empty path: %v", err)
	}
}

func TestExhaustedCounters(t *testing.T) {
	c := newCircuit(t, 1)
	cell := make([]byte, CellSize)
	h := c.path.hops[0]
	h.fwdCtr = counterMod - 1
	h.fwd = chainAt(generation(counterMod), "exhausted")
	if err := c.path.Seal(cell, 0, nil, nil); err != nil {
		t.Fatalf("last counter: %v", err)
	}
	if err := c.path.Seal(cell, 0, nil, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after the last: %v", err)
	}
	r := c.relays[0]
	r.bwdCtr = counterMod - 1
	r.bwd = chainAt(generation(counterMod), "exhausted")
	if err := c.relays[0].Backward(cell); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.relays[0].Originate(cell, nil, nil); !errors.Is(err, ErrExhausted) {
			t.Fatalf("backward after the last: %v", err)
		}
	}
}

// Repair: drop a failed hop and add a new one; the rest keeps working and
// cells relayed by the old hop beyond the new end are refused.
func TestTruncateAndRepair(t *testing.T) {
	c := newCircuit(t, 3)
	late := c.backwardFrom(t, 2, []byte("late"))
	c.path.Truncate(2)
	if c.path.Len() != 2 {
		t.Fatalf("Len = %d", c.path.Len())
	}
	if _, _, err := c.path.Open(late); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("cell from a truncated hop: %v", err)
	}
	c.path.Truncate(1)
	c.path.Truncate(5) // no-op
	k := testKeys("replacement")
	if err := c.path.AddHop(k.clone()); err != nil {
		t.Fatal(err)
	}
	c.relays = []*Relay{c.relays[0], NewRelay(k)}
	cell := make([]byte, CellSize)
	if err := c.path.Seal(cell, 1, []byte("via new hop"), nil); err != nil {
		t.Fatal(err)
	}
	c.relays[0].Forward(cell)
	local, got, err := c.relays[1].Forward(cell)
	if err != nil || !local || !bytes.Equal(got, padded([]byte("via new hop"))) {
		t.Fatalf("new hop: local=%v err=%v", local, err)
	}
	if hop, _, err := c.path.Open(c.backwardFrom(t, 1, nil)); err != nil || hop != 1 {
		t.Fatalf("backward from new hop: %d %v", hop, err)
	}
	c.path.Truncate(-1)
	if c.path.Len() != 0 {
		t.Fatalf("Len = %d after Truncate(-1)", c.path.Len())
	}
}

// Run with -race: Seal/Open on one path and Forward/Backward on its relays
// from many goroutines.
func TestConcurrentUse(t *testing.T) {
	c := newCircuit(t, 3)
	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			cell := make([]byte, CellSize)
			for i := range perWorker {
				want := []byte(fmt.Sprintf("fwd %d %d", w, i))
				if err := c.path.Seal(cell, 2, want, nil); err != nil {
					errs <- err
					return
				}
				for h := range 3 {
					local, got, err := c.relays[h].Forward(cell)
					if err != nil || local != (h == 2) || (local && !bytes.Equal(got[:len(want)], want)) {
						errs <- fmt.Errorf("forward at hop %d: local=%v err=%v", h, local, err)
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			cell := make([]byte, CellSize)
			for i := range perWorker {
				want := []byte(fmt.Sprintf("bwd %d %d", w, i))
				if err := c.relays[2].Originate(cell, want, nil); err != nil {
					errs <- err
					return
				}
				c.relays[1].Backward(cell)
				c.relays[0].Backward(cell)
				// Concurrent relays may deliver out of order; the window absorbs it.
				hop, got, err := c.path.Open(cell)
				if err != nil || hop != 2 || !bytes.Equal(got[:len(want)], want) {
					errs <- fmt.Errorf("open: hop %d err %v", hop, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
