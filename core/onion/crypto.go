package onion

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"sync"

	"golang.org/x/crypto/poly1305" // a one-time MAC is what each (key, counter) pair needs
)

// Keystream domains: the first byte of every counter block (§7).
const (
	dirForward  = 'f'
	dirBackward = 'b'
)

// Where things sit in a cell's keystream KS(K, d, c) (docs/PROTOCOL.md §7).
const (
	otkLen = 32 // a Poly1305 one-time key

	fwdOTK      = 0          // forward: MAC key of the hop's layer
	fwdKSOffset = otkLen     // forward: the body keystream ρ starts here
	bwdRelayOTK = 0          // backward: MAC key of a cell the hop relays
	bwdOrigOTK  = otkLen     // backward: MAC key of a cell the hop originates
	bwdKSOffset = 2 * otkLen // backward: the body keystream starts here

	// firstBlock is the counter-block index KS starts at: blocks 0 and 1 of
	// every (d, c) are never output. That is where AES-GCM's sealing starts
	// its keystream, which is how keystream() computes it.
	firstBlock = 2
	gcmTagSize = 16
)

// ratchetLabel prefixes the one-way step from one key generation to the next.
const ratchetLabel = "tarzan-onion-v2:ratchet"

// counterMod is the number of valid counters (1 .. 2^32−1) and the modulus
// of the wire encoding: wire 0 never occurs.
const counterMod = 1<<32 - 1

// wireCounter encodes logical counter c (1 ≤ c ≤ 2^32−1) for the wire:
// ((c − 1 + base) mod (2^32 − 1)) + 1. It is never 0, so a relayed cell's
// next slot is never the all-zero delivery marker.
func wireCounter(c, base uint32) uint32 {
	return uint32((uint64(c)-1+uint64(base))%counterMod) + 1
}

// logicalCounter inverts wireCounter; ok is false for wire value 0.
func logicalCounter(w, base uint32) (c uint32, ok bool) {
	if w == 0 {
		return 0, false
	}
	return uint32((uint64(w)-1+counterMod-uint64(base))%counterMod) + 1, true
}

// counterBase reduces 4 bytes of key material to a base in [0, 2^32−2].
func counterBase(b []byte) uint32 { return uint32(uint64(binary.BigEndian.Uint32(b)) % counterMod) }

// generation is the key generation of logical counter c ≥ 1.
func generation(c uint32) uint32 { return (c - 1) / ratchetEvery }

// genKeys is one key generation of one direction of one hop. The AES key
// is expanded once, when the generation is made, never per cell.
type genKeys struct {
	key   [32]byte     // kept only to derive the next generation
	block cipher.Block // single blocks (the filler); nil where not needed
	// ctr computes the keystream. crypto/cipher.NewCTR would have to be
	// called per cell, and it copies the whole expanded key into a new
	// heap object each time: an allocation per cell and a copy of the
	// round keys in freed memory for every cell, where no wipe reaches.
	// GCM's sealing encrypts the counter blocks nonce‖2, nonce‖3, … with
	// the schedule it holds, without allocating; its tag is discarded.
	ctr cipher.AEAD
}

// newGenKeys expands key. Only the sender of forward cells (the initiator,
// for the filler) needs single blocks; everyone else drops the block once
// GCM has its own copy, which saves 0.5 KB per generation held.
func newGenKeys(key *[32]byte, withBlock bool) *genKeys {
	g := &genKeys{key: *key}
	b, err := aes.NewCipher(g.key[:])
	if err != nil {
		panic("onion: aes: " + err.Error()) // the key size is a constant
	}
	ctr, err := cipher.NewGCM(b)
	if err != nil {
		panic("onion: gcm: " + err.Error() + " (GODEBUG=fips140=only is not supported)")
	}
	g.ctr = ctr
	if withBlock {
		g.block = b
	} else {
		wipeObject(b)
	}
	return g
}

// next derives the following generation: K' = SHA-256(label || K), one-way.
func (g *genKeys) next() *genKeys {
	var in [len(ratchetLabel) + 32]byte
	copy(in[:], ratchetLabel)
	copy(in[len(ratchetLabel):], g.key[:])
	k := sha256.Sum256(in[:])
	n := newGenKeys(&k, g.block != nil)
	clear(in[:])
	clear(k[:])
	return n
}

// wipe zeroes the raw key and both expanded copies of it (best effort: Go
// may have copied them; see wipeObject). It reports whether the expanded
// schedules were wiped.
func (g *genKeys) wipe() bool {
	clear(g.key[:])
	ok := wipeObject(g.ctr)
	if g.block != nil {
		ok = wipeObject(g.block) && ok
	}
	g.block, g.ctr = nil, nil
	return ok
}

// scratch is per-call working memory. It is pooled, not on the stack:
// slices handed to cipher interfaces escape, and a cell must not allocate.
type scratch struct {
	ks    [bwdKSOffset + CellSize + gcmTagSize]byte // keystream work area
	nonce [12]byte
	in    [aes.BlockSize]byte
	out   [aes.BlockSize]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch  { return scratchPool.Get().(*scratch) }
func putScratch(s *scratch) { scratchPool.Put(s) }

// keystream XORs KS(g, d, c)[0:n] into s.ks[0:n] in place. Counter block i
// of KS is AES_K(d || 0^7 || c || i+firstBlock), all big-endian.
func (g *genKeys) keystream(s *scratch, d byte, c uint32, n int) {
	s.nonce = [12]byte{d}
	binary.BigEndian.PutUint32(s.nonce[8:], c)
	g.ctr.Seal(s.ks[:0], s.nonce[:], s.ks[:n], nil) // n+16 bytes written; the tag is not used
}

// xorRange XORs KS(g, d, c)[from:from+len(dst)] into dst, one block at a
// time (for the filler, which needs a few bytes deep into the stream).
func (g *genKeys) xorRange(s *scratch, d byte, c uint32, from int, dst []byte) {
	for len(dst) > 0 {
		blk := from / aes.BlockSize
		s.in = [aes.BlockSize]byte{d}
		binary.BigEndian.PutUint32(s.in[8:], c)
		binary.BigEndian.PutUint32(s.in[12:], uint32(blk+firstBlock))
		g.block.Encrypt(s.out[:], s.in[:])
		n := subtle.XORBytes(dst, dst, s.out[from%aes.BlockSize:])
		dst, from = dst[n:], from+n
	}
}

// tagOK reports in constant time whether tag equals the first tagSize
// bytes of Poly1305(otk, data).
func tagOK(tag []byte, otk []byte, data []byte) bool {
	var want [tagSize]byte
	cellMAC(&want, otk, data)
	return subtle.ConstantTimeCompare(tag[:tagSize], want[:]) == 1
}

// cellMAC is Poly1305 under the one-time key otk (32 bytes of the cell's
// keystream), truncated to tagSize bytes.
func cellMAC(tag *[tagSize]byte, otk []byte, data []byte) {
	var full [poly1305.TagSize]byte
	poly1305.Sum(&full, data, (*[32]byte)(otk[:otkLen]))
	copy(tag[:], full[:tagSize])
}

func putSlot(slot []byte, w uint32, tag *[tagSize]byte) {
	binary.BigEndian.PutUint32(slot[:ctrSize], w)
	copy(slot[ctrSize:SlotSize], tag[:])
}

func slotCounter(slot []byte) uint32 { return binary.BigEndian.Uint32(slot[:ctrSize]) }

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
