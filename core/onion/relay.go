package onion

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
)

// Relay is one hop's state for one circuit: the forward key chain and
// replay window, and the backward counter and key chain. Safe for
// concurrent use; a direction's cells are processed one at a time (the
// ratchet wipes keys that a concurrent cell must not still be using).
type Relay struct {
	fwdBase, bwdBase uint32

	fwdMu sync.Mutex
	fwd   chain  // receiver: current and previous generations
	win   window // forward counters seen
	// resync: rejoined, no forward cell verified since (rejoin.go)
	resync bool

	bwdMu  sync.Mutex
	bwd    chain  // sender: the current generation only
	bwdCtr uint32 // last backward counter used (originated and relayed cells)

	rjMu sync.Mutex
	rj   rejoinState // resume key and rejoin generation (rejoin.go)
}

// NewRelay returns the state of one hop for one circuit. k must not be nil;
// the relay takes the key material over and wipes *k.
func NewRelay(k *Keys) *Relay {
	r := &Relay{fwdBase: k.fwdBase, bwdBase: k.bwdBase, fwd: newChain(&k.fwdKey, false), bwd: newChain(&k.bwdKey, false),
		rj: newRejoinState(&k.resume)}
	k.Wipe()
	return r
}

// Forward processes a forward cell in place (len(cell) == CellSize).
//
// It recovers this hop's counter, checks it against the replay window,
// verifies the tag over the whole body, then removes this hop's layer. If
// the cell is addressed to this hop, local is true and payload
// (PayloadSize bytes) aliases cell. Otherwise cell now holds the cell for
// the next hop; a hop that has no next hop drops it (callers report
// ErrNotForUs). On error the cell is left unchanged.
func (r *Relay) Forward(cell []byte) (local bool, payload []byte, err error) {
	if len(cell) != CellSize {
		return false, nil, fmt.Errorf("%w: forward cell of %d bytes", ErrMalformed, len(cell))
	}
	c, ok := logicalCounter(slotCounter(cell), r.fwdBase)
	if !ok {
		return false, nil, fmt.Errorf("%w: forward cell with counter 0", ErrTagMismatch)
	}
	s := getScratch()
	defer putScratch(s)
	r.fwdMu.Lock()
	defer r.fwdMu.Unlock()
	if err := r.win.check(c); err != nil {
		return false, nil, fmt.Errorf("forward cell counter %d: %w", c, err)
	}
	g := generation(c)
	keys := r.fwd.at(g)
	var far *genKeys // the first cell after a rejoin may jump further
	if keys == nil && r.resync {
		far = r.fwd.far(g)
		keys = far
	}
	if keys == nil {
		return false, nil, fmt.Errorf("%w: forward cell counter %d: no keys that far ahead", ErrTagMismatch, c)
	}
	// X = (body || 0^16) XOR ρ, computed beside the cell so that a cell
	// whose tag fails is left as it came.
	ks := s.ks[:fwdKSOffset+CellSize]
	clear(ks[:fwdKSOffset])
	copy(ks[fwdKSOffset:], cell[SlotSize:])
	clear(ks[fwdKSOffset+BodySize:])
	keys.keystream(s, dirForward, c, len(ks))
	if !tagOK(cell[ctrSize:SlotSize], ks[fwdOTK:], cell[SlotSize:]) {
		if far != nil {
			far.wipe()
		}
		return false, nil, fmt.Errorf("%w: forward cell counter %d", ErrTagMismatch, c)
	}
	r.win.accept(c) // cannot fail: checked above, under the same lock
	switch {
	case far != nil:
		r.fwd.adopt(g, far)
	case g > r.fwd.gen:
		r.fwd.advance(g, true)
	}
	r.resync = false
	copy(cell, ks[fwdKSOffset:])
	if allZero(cell[:SlotSize]) {
		return true, cell[SlotSize : SlotSize+PayloadSize], nil
	}
	return false, nil, nil
}

// Originate writes into cell (CellSize bytes) a backward cell from this hop
// carrying payload (at most PayloadSize bytes; shorter is zero-padded).
// payload may overlap cell (it is copied first). rand fills the
// unauthenticated tail; nil means crypto/rand.
func (r *Relay) Originate(cell []byte, payload []byte, rnd io.Reader) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: backward cell of %d bytes", ErrMalformed, len(cell))
	}
	if len(payload) > PayloadSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrMalformed, len(payload), PayloadSize)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	s := getScratch()
	defer putScratch(s)
	ks := s.ks[:bwdKSOffset+BodySize]
	clear(ks[:bwdKSOffset])
	n := copy(ks[bwdKSOffset:], payload)
	clear(ks[bwdKSOffset+n : bwdKSOffset+PayloadSize])
	if _, err := io.ReadFull(rnd, ks[bwdKSOffset+PayloadSize:]); err != nil {
		return fmt.Errorf("onion: originate: reading randomness: %w", err)
	}
	return r.backward(s, cell, bwdOrigOTK)
}

// Backward adds this hop's layer in place to a backward cell received from
// the next hop: inner = slot' || body'[:BodySize−16], body = inner XOR
// KS(Kb, 'b', c)[64:], slot = wire(c) || MAC. The relay cannot verify the
// inner cell; the initiator does.
func (r *Relay) Backward(cell []byte) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: backward cell of %d bytes", ErrMalformed, len(cell))
	}
	s := getScratch()
	defer putScratch(s)
	ks := s.ks[:bwdKSOffset+BodySize]
	clear(ks[:bwdKSOffset])
	copy(ks[bwdKSOffset:], cell[:BodySize]) // shift right by one slot; the tail falls off
	return r.backward(s, cell, bwdRelayOTK)
}

// backward encrypts the body prepared in s.ks[bwdKSOffset:] under this
// hop's next backward counter and writes it, with its slot, into cell.
func (r *Relay) backward(s *scratch, cell []byte, otk int) error {
	r.bwdMu.Lock()
	defer r.bwdMu.Unlock()
	if r.bwdCtr >= counterMod {
		return fmt.Errorf("backward cell: %w", ErrExhausted)
	}
	r.bwdCtr++
	c := r.bwdCtr
	r.bwd.advance(generation(c), false)
	ks := s.ks[:bwdKSOffset+BodySize]
	r.bwd.cur.keystream(s, dirBackward, c, len(ks))
	copy(cell[SlotSize:], ks[bwdKSOffset:])
	var tag [tagSize]byte
	cellMAC(&tag, ks[otk:], cell[SlotSize:SlotSize+PayloadSize])
	putSlot(cell, wireCounter(c, r.bwdBase), &tag)
	return nil
}
