package onion

// Protocol v1's forward step (ChaCha20 keystream, Poly1305 under a ChaCha20
// one-time key, one sequence number for every layer), kept only as the
// baseline BenchmarkRelayForward/v1 measures v2 against. Copied from the
// v1 code (core/onion at commit 6362c0f); nothing else uses it.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305"
)

type v1Keys struct{ fwdCipher, fwdMAC [32]byte }

func v1TestKeys(label string) *v1Keys {
	return &v1Keys{
		fwdCipher: sha256.Sum256([]byte(label + "/Kf")),
		fwdMAC:    sha256.Sum256([]byte(label + "/Mf")),
	}
}

func v1XorKeyStream(key *[32]byte, seq uint32, block uint32, dst, src []byte) {
	var n [chacha20.NonceSize]byte
	n[0] = dirForward
	binary.BigEndian.PutUint32(n[8:], seq)
	c, err := chacha20.NewUnauthenticatedCipher(key[:], n[:])
	if err != nil {
		panic(err)
	}
	if block != 0 {
		c.SetCounter(block)
	}
	c.XORKeyStream(dst, src)
}

func v1CellMAC(tag *[tagSize]byte, key *[32]byte, seq uint32, data []byte) {
	var otk [32]byte
	v1XorKeyStream(key, seq, 0, otk[:], otk[:])
	var full [poly1305.TagSize]byte
	poly1305.Sum(&full, data, &otk)
	copy(tag[:], full[:tagSize])
}

// v1Relay is v1's Relay, forward direction only.
type v1Relay struct {
	keys v1Keys
	mu   sync.Mutex
	win  window
}

func (r *v1Relay) Forward(cell []byte) (local bool, payload []byte, err error) {
	if len(cell) != CellSize {
		return false, nil, fmt.Errorf("%w: forward cell of %d bytes", ErrMalformed, len(cell))
	}
	seq := binary.BigEndian.Uint32(cell)
	var want [tagSize]byte
	v1CellMAC(&want, &r.keys.fwdMAC, seq, cell[SlotSize:])
	if subtle.ConstantTimeCompare(cell[ctrSize:SlotSize], want[:]) != 1 {
		return false, nil, fmt.Errorf("%w: forward cell seq %d", ErrTagMismatch, seq)
	}
	r.mu.Lock()
	err = r.win.accept(seq)
	r.mu.Unlock()
	if err != nil {
		return false, nil, fmt.Errorf("forward cell seq %d: %w", seq, err)
	}
	copy(cell, cell[SlotSize:])
	clear(cell[BodySize:])
	v1XorKeyStream(&r.keys.fwdCipher, seq, 0, cell, cell)
	if allZero(cell[:SlotSize]) {
		return true, cell[SlotSize : SlotSize+PayloadSize], nil
	}
	return false, nil, nil
}

// v1Seal is v1's seal for hops keys[0..j-1] (the relay's input for the
// benchmark); padding is zero.
func v1Seal(cell []byte, keys []*v1Keys, seq uint32, payload []byte) {
	j := len(keys)
	target := keys[j-1]
	n := copy(cell[2*SlotSize:], payload)
	clear(cell[2*SlotSize+n:])
	clear(cell[SlotSize : 2*SlotSize])
	v1XorKeyStream(&target.fwdCipher, seq, 0, cell[SlotSize:2*SlotSize+PayloadSize], cell[SlotSize:2*SlotSize+PayloadSize])
	fillerStart := CellSize - SlotSize*(j-1)
	filler := cell[fillerStart:]
	clear(filler)
	const fillerBlock = (BodySize - SlotSize*(MaxHops-2)) / 64
	var ks [CellSize - fillerBlock*64]byte
	for i, k := range keys[:j-1] {
		clear(ks[:])
		v1XorKeyStream(&k.fwdCipher, seq, fillerBlock, ks[:], ks[:])
		seg := ks[BodySize-SlotSize*i-fillerBlock*64:]
		for x := range seg {
			filler[x] ^= seg[x]
		}
	}
	var tag [tagSize]byte
	put := func() {
		binary.BigEndian.PutUint32(cell, seq)
		copy(cell[ctrSize:SlotSize], tag[:])
	}
	v1CellMAC(&tag, &target.fwdMAC, seq, cell[SlotSize:])
	put()
	for i := j - 2; i >= 0; i-- {
		body := cell[SlotSize:]
		copy(body, cell[:BodySize])
		v1XorKeyStream(&keys[i].fwdCipher, seq, 0, body, body)
		v1CellMAC(&tag, &keys[i].fwdMAC, seq, body)
		put()
	}
}
