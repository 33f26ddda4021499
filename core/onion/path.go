package onion

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"sync"
)

// Path is the initiator's state for a tunnel: the keys of each hop, the
// forward sequence counter (one sequence number per cell, shared by all its
// layers) and a backward replay window per hop. Safe for concurrent use.
type Path struct {
	mu   sync.Mutex
	hops []*pathHop
	seq  uint64 // last forward sequence number used
}

type pathHop struct {
	keys Keys // immutable once added

	mu  sync.Mutex
	win window // backward counters of this hop seen
}

// NewPath returns an empty path.
func NewPath() *Path {
	return &Path{hops: make([]*pathHop, 0, MaxHops)}
}

// AddHop appends a hop (its keys are copied). ErrTooManyHops past MaxHops.
func (p *Path) AddHop(k *Keys) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.hops) >= MaxHops {
		return fmt.Errorf("add hop %d: %w", len(p.hops)+1, ErrTooManyHops)
	}
	p.hops = append(p.hops, &pathHop{keys: *k})
	return nil
}

// Len is the number of hops.
func (p *Path) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hops)
}

// Truncate keeps the first n hops (to repair a failed hop without
// rebuilding the rest). The forward counter carries on, so a re-added hop
// never sees a sequence number reused under the old hops' keys.
func (p *Path) Truncate(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = max(n, 0)
	if n >= len(p.hops) {
		return
	}
	clear(p.hops[n:])
	p.hops = p.hops[:n]
}

// Seal builds in cell (CellSize bytes) a forward cell whose payload (at most
// PayloadSize bytes, zero-padded) is delivered to hop (0-based); the hops
// before it relay it. payload may overlap cell (it is copied first). rand
// fills the padding between payload and filler; nil means crypto/rand.
func (p *Path) Seal(cell []byte, hop int, payload []byte, rnd io.Reader) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: forward cell of %d bytes", ErrMalformed, len(cell))
	}
	if len(payload) > PayloadSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrMalformed, len(payload), PayloadSize)
	}
	var keys [MaxHops]*Keys
	p.mu.Lock()
	if hop < 0 || hop >= len(p.hops) {
		n := len(p.hops)
		p.mu.Unlock()
		return fmt.Errorf("seal for hop %d of %d: %w", hop, n, ErrNoSuchHop)
	}
	if p.seq >= math.MaxUint32 {
		p.mu.Unlock()
		return fmt.Errorf("seal: %w", ErrExhausted)
	}
	p.seq++
	seq := uint32(p.seq)
	for i := 0; i <= hop; i++ {
		keys[i] = &p.hops[i].keys
	}
	p.mu.Unlock()
	if rnd == nil {
		rnd = rand.Reader
	}
	return seal(cell, keys[:hop+1], seq, payload, rnd)
}

// seal lays out the cell for hops keys[0..j-1], addressed to the last.
// See docs/PROTOCOL.md §7 for the equations.
func seal(cell []byte, keys []*Keys, seq uint32, payload []byte, rnd io.Reader) error {
	j := len(keys)
	target := keys[j-1]

	// Innermost body D || filler, at cell[SlotSize:].
	// D = (0^16 || payload || pad) XOR KS(Kf_j)[0:16+P] then random gap.
	n := copy(cell[2*SlotSize:], payload)
	clear(cell[2*SlotSize+n : 2*SlotSize+PayloadSize])
	clear(cell[SlotSize : 2*SlotSize])
	xorKeyStream(&target.fwdCipher, dirForward, seq, 0, cell[SlotSize:2*SlotSize+PayloadSize], cell[SlotSize:2*SlotSize+PayloadSize])
	fillerStart := CellSize - SlotSize*(j-1)
	if _, err := io.ReadFull(rnd, cell[2*SlotSize+PayloadSize:fillerStart]); err != nil {
		return fmt.Errorf("onion: seal: reading randomness: %w", err)
	}
	fillFiller(cell[fillerStart:], keys[:j-1], seq)

	var tag [tagSize]byte
	cellMAC(&tag, &target.fwdMAC, dirForward, seq, cell[SlotSize:])
	putSlot(cell, seq, &tag)

	// Wrap outward: body_i = (slot_{i+1} || body_{i+1}[:B−16]) XOR KS(Kf_i)[0:B].
	for i := j - 2; i >= 0; i-- {
		k := keys[i]
		body := cell[SlotSize:]
		copy(body, cell[:BodySize])
		xorKeyStream(&k.fwdCipher, dirForward, seq, 0, body, body)
		cellMAC(&tag, &k.fwdMAC, dirForward, seq, body)
		putSlot(cell, seq, &tag)
	}
	return nil
}

// fillerBlock is the first keystream block that covers a filler byte:
// offsets BodySize−16·(MaxHops−2) .. BodySize+16 of a hop's keystream.
const (
	fillerBlock    = (BodySize - SlotSize*(MaxHops-2)) / 64
	fillerKSOffset = fillerBlock * 64
	fillerKSLen    = CellSize - fillerKSOffset
)

// fillFiller writes into dst (16·len(keys) bytes) the filler that hops
// keys[0..] leave at the end of the body of the hop after them:
// φ_1 = ε; φ_{i+1} = (φ_i || 0^16) XOR KS(Kf_i)[B−16(i−1) : B+16].
func fillFiller(dst []byte, keys []*Keys, seq uint32) {
	clear(dst)
	var ks [fillerKSLen]byte
	for i, k := range keys { // i is 0-based: this hop has shifted i slots in
		clear(ks[:])
		xorKeyStream(&k.fwdCipher, dirForward, seq, fillerBlock, ks[:], ks[:])
		from := BodySize - SlotSize*i - fillerKSOffset
		seg := ks[from:]
		for x := range seg {
			dst[x] ^= seg[x]
		}
	}
}

// Open processes a backward cell in place and returns the originating hop
// (0-based) and its payload (PayloadSize bytes, aliasing cell). Each hop's
// layer is verified before it is removed; a cell that no hop's MAC
// accepts is ErrTagMismatch, a replayed one ErrReplay. On error the cell's
// contents are unspecified.
func (p *Path) Open(cell []byte) (hop int, payload []byte, err error) {
	if len(cell) != CellSize {
		return -1, nil, fmt.Errorf("%w: backward cell of %d bytes", ErrMalformed, len(cell))
	}
	var hops [MaxHops]*pathHop
	p.mu.Lock()
	n := copy(hops[:], p.hops)
	p.mu.Unlock()

	off := 0 // the slot of the layer being opened; its body follows it
	for i := 0; i < n; i++ {
		h := hops[i]
		slot := cell[off : off+SlotSize]
		body := cell[off+SlotSize:]
		c := slotSeq(slot)
		tag := slot[seqSize:]
		relayed := tagOK(tag, &h.keys.bwdRelay, dirBackward, c, body[:PayloadSize])
		if !relayed && !tagOK(tag, &h.keys.bwdOrigin, dirBackward, c, body[:PayloadSize]) {
			return -1, nil, fmt.Errorf("%w: backward cell at hop %d counter %d", ErrTagMismatch, i, c)
		}
		h.mu.Lock()
		err := h.win.accept(c)
		h.mu.Unlock()
		if err != nil {
			return -1, nil, fmt.Errorf("backward cell at hop %d counter %d: %w", i, c, err)
		}
		if !relayed {
			xorKeyStream(&h.keys.bwdCipher, dirBackward, c, 0, body[:PayloadSize], body[:PayloadSize])
			return i, body[:PayloadSize], nil
		}
		// Peel: body XOR KS is slot' || body'[:B−16]; what a relay truncated
		// is never needed because MACs cover body[:P] only.
		xorKeyStream(&h.keys.bwdCipher, dirBackward, c, 0, body, body)
		off += SlotSize
	}
	return -1, nil, fmt.Errorf("%w: backward cell relayed by the last hop (%d) of the path", ErrTagMismatch, n)
}
