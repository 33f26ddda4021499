package onion

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
)

// Path is the initiator's state for a tunnel: per hop, the forward counter
// and key chain (one counter per hop, counting only the cells that reach
// it) and the backward key chain and replay window. Safe for concurrent
// use: Seal runs under one lock and Open under another, since a ratchet
// step wipes keys that a concurrent cell must not still be using.
type Path struct {
	fwdMu sync.Mutex // Seal; AddHop and Truncate take both locks
	bwdMu sync.Mutex // Open
	hops  []*pathHop
	aside *pathHop // the last hop while the hops before it are replaced (rejoin.go)
}

type pathHop struct {
	fwdBase, bwdBase uint32

	fwdCtr uint32 // last forward counter used (fwdMu)
	fwd    chain  // sender: the current generation only (fwdMu)

	bwd chain  // receiver: current and previous generations (bwdMu)
	win window // backward counters of this hop seen (bwdMu)

	rj rejoinState // resume key and rejoin generation (both locks)

	resync bool // rejoined, no backward cell from it verified since (bwdMu)
}

func newPathHop(k *Keys) *pathHop {
	h := &pathHop{fwdBase: k.fwdBase, bwdBase: k.bwdBase, fwd: newChain(&k.fwdKey, true), bwd: newChain(&k.bwdKey, false),
		rj: newRejoinState(&k.resume)}
	k.Wipe()
	return h
}

func (h *pathHop) wipe() {
	h.fwd.wipe()
	h.bwd.wipe()
	h.rj.wipe()
}

// NewPath returns an empty path.
func NewPath() *Path {
	return &Path{hops: make([]*pathHop, 0, MaxHops)}
}

func (p *Path) lockAll()   { p.fwdMu.Lock(); p.bwdMu.Lock() }
func (p *Path) unlockAll() { p.bwdMu.Unlock(); p.fwdMu.Unlock() }

// AddHop appends a hop. It takes the key material over: *k is wiped, so
// that no copy outlives the ratchet. ErrTooManyHops past MaxHops (k is
// then left as it was).
func (p *Path) AddHop(k *Keys) error {
	p.lockAll()
	defer p.unlockAll()
	if len(p.hops)+btoi(p.aside != nil) >= MaxHops {
		return fmt.Errorf("add hop %d: %w", len(p.hops)+1, ErrTooManyHops)
	}
	p.hops = append(p.hops, newPathHop(k))
	return nil
}

// Len is the number of hops.
func (p *Path) Len() int {
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	return len(p.hops)
}

// Truncate keeps the first n hops (to repair a failed hop without
// rebuilding the rest) and wipes the others' keys; a hop set aside stays
// aside (DropAside wipes it). The kept hops' counters
// carry on; a hop added later starts its own at 1 under fresh keys.
func (p *Path) Truncate(n int) {
	p.lockAll()
	defer p.unlockAll()
	n = max(n, 0)
	if n >= len(p.hops) {
		return
	}
	for _, h := range p.hops[n:] {
		h.wipe()
	}
	clear(p.hops[n:])
	p.hops = p.hops[:n]
}

// layer is what sealing one hop's layer needs.
type layer struct {
	keys *genKeys
	c, w uint32 // logical and wire counter
}

// Seal builds in cell (CellSize bytes) a forward cell whose payload (at most
// PayloadSize bytes, zero-padded) is delivered to hop (0-based); the hops
// before it relay it. Each of hops 0..hop uses its next forward counter.
// payload may overlap cell (it is copied first). rand fills the padding
// between payload and filler; nil means crypto/rand.
func (p *Path) Seal(cell []byte, hop int, payload []byte, rnd io.Reader) error {
	return p.sealIf(cell, hop, payload, rnd, false)
}

// sealIf is Seal; with lastOnly it fails with ErrAside unless hop is still
// the last hop and no hop is set aside (checked under the lock).
func (p *Path) sealIf(cell []byte, hop int, payload []byte, rnd io.Reader, lastOnly bool) error {
	if len(cell) != CellSize {
		return fmt.Errorf("%w: forward cell of %d bytes", ErrMalformed, len(cell))
	}
	if len(payload) > PayloadSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrMalformed, len(payload), PayloadSize)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	if lastOnly && (p.aside != nil || hop != len(p.hops)-1) {
		return ErrAside
	}
	if hop < 0 || hop >= len(p.hops) {
		return fmt.Errorf("seal for hop %d of %d: %w", hop, len(p.hops), ErrNoSuchHop)
	}
	for i, h := range p.hops[:hop+1] {
		if h.fwdCtr >= counterMod {
			return fmt.Errorf("seal: hop %d: %w", i, ErrExhausted)
		}
	}
	var layers [MaxHops]layer
	for i, h := range p.hops[:hop+1] {
		h.fwdCtr++
		c := h.fwdCtr
		h.fwd.advance(generation(c), false)
		layers[i] = layer{keys: h.fwd.cur, c: c, w: wireCounter(c, h.fwdBase)}
	}
	s := getScratch()
	defer putScratch(s)
	return seal(s, cell, layers[:hop+1], payload, rnd)
}

// SealLast is Seal addressed to the last hop; while a hop is set aside
// (rejoin.go) it is ErrAside: the last hop of the path is then not the
// one the caller means.
func (p *Path) SealLast(cell []byte, payload []byte, rnd io.Reader) error {
	p.fwdMu.Lock()
	aside, last := p.aside != nil, len(p.hops)-1
	p.fwdMu.Unlock()
	if aside {
		return ErrAside
	}
	return p.sealIf(cell, last, payload, rnd, true)
}

// seal lays out the cell for hops ls[0..j-1], addressed to the last.
// See docs/PROTOCOL.md §7.1 for the equations.
func seal(s *scratch, cell []byte, ls []layer, payload []byte, rnd io.Reader) error {
	j := len(ls)
	t := ls[j-1]

	// Innermost body: D = (0^16 || payload || pad) XOR ρ_j[0:16+P], then
	// random bytes, then the filler.
	const dLen = SlotSize + PayloadSize
	ks := s.ks[:fwdKSOffset+dLen]
	clear(ks[:fwdKSOffset+SlotSize])
	n := copy(ks[fwdKSOffset+SlotSize:], payload)
	clear(ks[fwdKSOffset+SlotSize+n:])
	t.keys.keystream(s, dirForward, t.c, len(ks))
	copy(cell[SlotSize:], ks[fwdKSOffset:])
	fillerStart := CellSize - SlotSize*(j-1)
	if _, err := io.ReadFull(rnd, cell[SlotSize+dLen:fillerStart]); err != nil {
		return fmt.Errorf("onion: seal: reading randomness: %w", err)
	}
	fillFiller(s, cell[fillerStart:], ls[:j-1])

	var tag [tagSize]byte
	cellMAC(&tag, ks[fwdOTK:], cell[SlotSize:])
	putSlot(cell, t.w, &tag)

	// Wrap outward: body_i = (slot_{i+1} || body_{i+1}[:B−16]) XOR ρ_i[0:B].
	for i := j - 2; i >= 0; i-- {
		l := ls[i]
		ks := s.ks[:fwdKSOffset+BodySize]
		clear(ks[:fwdKSOffset])
		copy(ks[fwdKSOffset:], cell[:BodySize])
		l.keys.keystream(s, dirForward, l.c, len(ks))
		copy(cell[SlotSize:], ks[fwdKSOffset:])
		cellMAC(&tag, ks[fwdOTK:], cell[SlotSize:])
		putSlot(cell, l.w, &tag)
	}
	return nil
}

// fillFiller writes into dst (16·len(ls) bytes) the filler that hops
// ls[0..] leave at the end of the body of the hop after them:
// φ_1 = ε; φ_{i+1} = (φ_i || 0^16) XOR ρ_i[B−16(i−1) : B+16].
func fillFiller(s *scratch, dst []byte, ls []layer) {
	clear(dst)
	for i, l := range ls { // i is 0-based: this hop has shifted i slots in
		seg := dst[:SlotSize*(i+1)]
		l.keys.xorRange(s, dirForward, l.c, fwdKSOffset+BodySize-SlotSize*i, seg)
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
	s := getScratch()
	defer putScratch(s)
	p.bwdMu.Lock()
	defer p.bwdMu.Unlock()

	off := 0 // the slot of the layer being opened; its body follows it
	for i, h := range p.hops {
		slot := cell[off : off+SlotSize]
		body := cell[off+SlotSize:]
		c, ok := logicalCounter(slotCounter(slot), h.bwdBase)
		if !ok {
			return -1, nil, fmt.Errorf("%w: backward cell at hop %d with counter 0", ErrTagMismatch, i)
		}
		if err := h.win.check(c); err != nil {
			return -1, nil, fmt.Errorf("backward cell at hop %d counter %d: %w", i, c, err)
		}
		g := generation(c)
		keys := h.bwd.at(g)
		var far *genKeys // a rejoined hop's first cell may jump further
		if keys == nil && h.resync {
			far = h.bwd.far(g)
			keys = far
		}
		if keys == nil {
			return -1, nil, fmt.Errorf("%w: backward cell at hop %d counter %d: no keys that far ahead", ErrTagMismatch, i, c)
		}
		ks := s.ks[:bwdKSOffset+len(body)]
		clear(ks[:bwdKSOffset])
		copy(ks[bwdKSOffset:], body)
		keys.keystream(s, dirBackward, c, len(ks))
		tag := slot[ctrSize:]
		// The last hop can only have originated the cell (nobody relays
		// to it backward), so only its originator MAC is checked: one
		// Poly1305 less per cell from the exit. Before it, a relayed
		// cell is by far the common case and is checked first.
		last := i == len(p.hops)-1
		relayed := !last && tagOK(tag, ks[bwdRelayOTK:], body[:PayloadSize])
		if !relayed && !tagOK(tag, ks[bwdOrigOTK:], body[:PayloadSize]) {
			if far != nil {
				far.wipe()
			}
			return -1, nil, fmt.Errorf("%w: backward cell at hop %d counter %d", ErrTagMismatch, i, c)
		}
		h.win.accept(c) // cannot fail: checked above, under the same lock
		switch {
		case far != nil:
			h.bwd.adopt(g, far)
		case g > h.bwd.gen:
			h.bwd.advance(g, true)
		}
		h.resync = false
		// Peel: body XOR KS is slot' || body'[:B−16]; what a relay truncated
		// is never needed because MACs cover body[:P] only.
		copy(body, ks[bwdKSOffset:])
		if !relayed {
			return i, body[:PayloadSize], nil
		}
		off += SlotSize
	}
	return -1, nil, fmt.Errorf("%w: backward cell relayed by the last hop (%d) of the path", ErrTagMismatch, len(p.hops))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
