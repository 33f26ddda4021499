package onion

// fsCellsLater is how many cells pass the relay after the recorded one:
// two key generations and a little more.
const fsCellsLater = 2*ratchetEvery + 10

// seizedRelayOpens plays an attacker holding r's memory: it ignores the
// replay window, reads the recorded cell's counter (it knows the base) and
// tries every key generation the relay still holds, and the ones it could
// derive from them, on the cell's tag; with one that verifies it decrypts.
func seizedRelayOpens(r *Relay, cell []byte) ([]byte, bool) {
	c, ok := logicalCounter(slotCounter(cell), r.fwdBase)
	if !ok {
		return nil, false
	}
	held := []*genKeys{r.fwd.prev, r.fwd.cur}
	for k := r.fwd.cur; len(held) < 2+maxAhead+8; {
		k = k.next()
		held = append(held, k)
	}
	s := getScratch()
	defer putScratch(s)
	for _, k := range held {
		if k == nil {
			continue
		}
		ks := s.ks[:fwdKSOffset+CellSize]
		clear(ks[:fwdKSOffset])
		copy(ks[fwdKSOffset:], cell[SlotSize:])
		clear(ks[fwdKSOffset+BodySize:])
		k.keystream(s, dirForward, c, len(ks))
		if tagOK(cell[ctrSize:SlotSize], ks[fwdOTK:], cell[SlotSize:]) {
			return append([]byte(nil), ks[fwdKSOffset+SlotSize:fwdKSOffset+SlotSize+PayloadSize]...), true
		}
	}
	return nil, false
}
