package onion

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
)

// Relay is one hop's state for one circuit: its keys, the forward replay
// window and the backward counter. Safe for concurrent use; the lock only
// covers the replay window, the cryptography runs outside it.
type Relay struct {
	keys Keys

	mu  sync.Mutex
	win window // forward sequence numbers seen

	bwd atomic.Uint64 // last backward counter used (origin and relayed cells)
}

// NewRelay returns the state of one hop for one circuit. k must not be nil;
// it is copied.
func NewRelay(k *Keys) *Relay {
	return &Relay{keys: *k}
}

// Forward processes a forward cell in place (len(cell) == CellSize).
//
// It verifies the tag over the whole body, then the replay window, then
// removes this hop's layer. If the cell is addressed to this hop, local is
// true and payload (PayloadSize bytes) aliases cell. Otherwise cell now
// holds the cell for the next hop; a hop that has no next hop drops it
// (callers report ErrNotForUs). On error the cell is left unchanged.
func (r *Relay) Forward(cell []byte) (local bool, payload []byte, err error) {
	if len(cell) != CellSize {
		return false, nil, fmt.Errorf("%w: forward cell of %d bytes", ErrMalformed, len(cell))
	}
	seq := slotSeq(cell)
	if !tagOK(cell[seqSize:SlotSize], &r.keys.fwdMAC, dirForward, seq, cell[SlotSize:]) {
		return false, nil, fmt.Errorf("%w: forward cell seq %d", ErrTagMismatch, seq)
	}
	r.mu.Lock()
	err = r.win.accept(seq)
	r.mu.Unlock()
	if err != nil {
		return false, nil, fmt.Errorf("forward cell seq %d: %w", seq, err)
	}
	// X = (body || 0^16) XOR KS(Kf, 'f', seq), computed in the cell itself.
	copy(cell, cell[SlotSize:])
	clear(cell[BodySize:])
	xorKeyStream(&r.keys.fwdCipher, dirForward, seq, 0, cell, cell)
	if allZero(cell[:SlotSize]) {
		return true, cell[SlotSize : SlotSize+PayloadSize], nil
	}
	return false, nil, nil
}

// Originate writes into cell (CellSize bytes) a backward cell from this hop
// carrying payload (at most PayloadSize bytes; shorter is zero-padded).
// payload may overlap cell (it is copied first). rand fills the unauthenticated tail; nil
// means crypto/rand.
func (r *Relay) Originate(cell []byte, payload []byte, rnd io.Reader) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: backward cell of %d bytes", ErrMalformed, len(cell))
	}
	if len(payload) > PayloadSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrMalformed, len(payload), PayloadSize)
	}
	c, err := r.nextBackward()
	if err != nil {
		return err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	body := cell[SlotSize:]
	n := copy(body, payload)
	clear(body[n:PayloadSize])
	if _, err := io.ReadFull(rnd, body[PayloadSize:]); err != nil {
		return fmt.Errorf("onion: originate: reading randomness: %w", err)
	}
	xorKeyStream(&r.keys.bwdCipher, dirBackward, c, 0, body, body)
	var tag [tagSize]byte
	cellMAC(&tag, &r.keys.bwdOrigin, dirBackward, c, body[:PayloadSize])
	putSlot(cell, c, &tag)
	return nil
}

// Backward adds this hop's layer in place to a backward cell received from
// the next hop: inner = slot' || body'[:BodySize−16], body = inner XOR
// KS(Kb, 'b', c), slot = c || MAC(Mr, c, body[:PayloadSize]). The relay
// cannot verify the inner cell; the initiator does.
func (r *Relay) Backward(cell []byte) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: backward cell of %d bytes", ErrMalformed, len(cell))
	}
	c, err := r.nextBackward()
	if err != nil {
		return err
	}
	body := cell[SlotSize:]
	copy(body, cell[:BodySize]) // shift right by one slot; the tail falls off
	xorKeyStream(&r.keys.bwdCipher, dirBackward, c, 0, body, body)
	var tag [tagSize]byte
	cellMAC(&tag, &r.keys.bwdRelay, dirBackward, c, body[:PayloadSize])
	putSlot(cell, c, &tag)
	return nil
}

func (r *Relay) nextBackward() (uint32, error) {
	c := r.bwd.Add(1)
	if c > math.MaxUint32 {
		r.bwd.Store(math.MaxUint32 + 1) // stay exhausted without wrapping
		return 0, fmt.Errorf("backward cell: %w", ErrExhausted)
	}
	return uint32(c), nil
}
