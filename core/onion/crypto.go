package onion

import (
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305" // a one-time MAC is what each (key, seq) pair needs
)

// Keystream directions; the first byte of every nonce.
const (
	dirForward  = 'f'
	dirBackward = 'b'
)

// Keys is one hop's key material for one circuit, the output of the
// handshake. Both ends hold an identical copy.
type Keys struct {
	fwdCipher [32]byte // Kf
	fwdMAC    [32]byte // Mf
	bwdCipher [32]byte // Kb
	bwdOrigin [32]byte // Mo: MAC of backward cells the hop originates
	bwdRelay  [32]byte // Mr: MAC of backward cells the hop relays
}

// Wipe zeroes the key material (best effort; Go may have copied it).
func (k *Keys) Wipe() { *k = Keys{} }

func nonce(dir byte, seq uint32) [chacha20.NonceSize]byte {
	var n [chacha20.NonceSize]byte
	n[0] = dir
	binary.BigEndian.PutUint32(n[8:], seq)
	return n
}

// xorKeyStream XORs src into dst with KS(key, dir, seq) starting at the
// 64-byte block index block.
func xorKeyStream(key *[32]byte, dir byte, seq uint32, block uint32, dst, src []byte) {
	n := nonce(dir, seq)
	c, err := chacha20.NewUnauthenticatedCipher(key[:], n[:])
	if err != nil {
		panic("onion: chacha20: " + err.Error()) // sizes are constants
	}
	if block != 0 {
		c.SetCounter(block)
	}
	c.XORKeyStream(dst, src)
}

// cellMAC computes the 12-byte tag MAC(key, seq, data): Poly1305 under the
// one-time key formed by the first 32 bytes of KS(key, dir, seq). Each
// (key, dir, seq) authenticates exactly one message, as Poly1305 requires.
func cellMAC(tag *[tagSize]byte, key *[32]byte, dir byte, seq uint32, data []byte) {
	var otk [32]byte
	xorKeyStream(key, dir, seq, 0, otk[:], otk[:])
	var full [poly1305.TagSize]byte
	poly1305.Sum(&full, data, &otk)
	copy(tag[:], full[:tagSize])
}

// tagOK reports in constant time whether tag == MAC(key, seq, data).
func tagOK(tag []byte, key *[32]byte, dir byte, seq uint32, data []byte) bool {
	var want [tagSize]byte
	cellMAC(&want, key, dir, seq, data)
	return subtle.ConstantTimeCompare(tag[:tagSize], want[:]) == 1
}

func putSlot(slot []byte, seq uint32, tag *[tagSize]byte) {
	binary.BigEndian.PutUint32(slot[:seqSize], seq)
	copy(slot[seqSize:SlotSize], tag[:])
}

func slotSeq(slot []byte) uint32 { return binary.BigEndian.Uint32(slot[:seqSize]) }

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
