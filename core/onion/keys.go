package onion

// Keys is one hop's key material for one circuit, the output of the
// handshake. Both ends hold an identical copy until they hand it to
// Path.AddHop or NewRelay, which take it over and wipe it.
type Keys struct {
	fwdKey  [32]byte // Kf: generation 0 of the forward chain
	bwdKey  [32]byte // Kb: generation 0 of the backward chain
	fwdBase uint32   // Bf: offset of the forward wire counter
	bwdBase uint32   // Bb: offset of the backward wire counter
	resume  [32]byte // Kr: the resume key; proves ownership in a rejoin (rejoin.go)
}

// Wipe zeroes the key material (best effort; Go may have copied it).
func (k *Keys) Wipe() { *k = Keys{} }

// chain holds one direction's key generations at one end of a hop: the
// current one, the previous one while a receiver's replay window may still
// accept its cells, and up to maxAhead later ones derived on demand
// (harmless to hold: anyone with the current key can derive them).
// Everything older is wiped as soon as it is not needed.
type chain struct {
	gen   uint32 // generation of cur
	prev  *genKeys
	cur   *genKeys
	ahead [maxAhead]*genKeys // gen+1 .. gen+maxAhead, nil until derived
}

// newChain starts a chain at generation 0; withBlock keeps single-block
// encryption available (see newGenKeys).
func newChain(key *[32]byte, withBlock bool) chain { return chain{cur: newGenKeys(key, withBlock)} }

// at returns generation g's keys, or nil if they are gone (older than the
// previous generation) or g is more than maxAhead generations ahead.
func (ch *chain) at(g uint32) *genKeys {
	switch {
	case g == ch.gen:
		return ch.cur
	case g+1 == ch.gen:
		return ch.prev
	case g < ch.gen || g-ch.gen > maxAhead:
		return nil
	}
	k := ch.cur
	for i := range g - ch.gen {
		if ch.ahead[i] == nil {
			ch.ahead[i] = k.next()
		}
		k = ch.ahead[i]
	}
	return k
}

// advance makes generation g (≥ the current one) current. A receiver keeps
// the previous generation (keepPrev) for cells still inside its replay
// window; a sender never goes back and keeps nothing older.
func (ch *chain) advance(g uint32, keepPrev bool) {
	for ch.gen < g {
		next := ch.ahead[0]
		if next == nil {
			next = ch.cur.next()
		}
		copy(ch.ahead[:], ch.ahead[1:])
		ch.ahead[maxAhead-1] = nil
		if ch.prev != nil {
			ch.prev.wipe()
		}
		ch.prev, ch.cur = ch.cur, next
		ch.gen++
	}
	if !keepPrev && ch.prev != nil {
		ch.prev.wipe()
		ch.prev = nil
	}
}

// wipe drops every generation.
func (ch *chain) wipe() {
	for _, k := range append([]*genKeys{ch.prev, ch.cur}, ch.ahead[:]...) {
		if k != nil {
			k.wipe()
		}
	}
	*ch = chain{}
}

// far derives generation g's keys for g beyond what at reaches (up to
// maxResync generations past the current one) without keeping the
// generations between: for the first cell after a rejoin (rejoin.go),
// whose counter may have jumped over every cell lost meanwhile. nil if g
// is not ahead or too far. The caller wipes the result unless adopt takes
// it over.
func (ch *chain) far(g uint32) *genKeys {
	if g <= ch.gen || g-ch.gen > maxResync {
		return nil
	}
	k := ch.cur.next()
	for range g - ch.gen - 1 {
		n := k.next()
		k.wipe()
		k = n
	}
	return k
}

// adopt makes k, generation g from far, current and wipes every other
// generation: cells older than the one that proved k are the gap's.
func (ch *chain) adopt(g uint32, k *genKeys) {
	ch.wipe()
	ch.gen, ch.cur = g, k
}
