package mimic

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/tarzan-net/tarzan/core/domain"
)

// maxAttempts bounds the walks made for one mimic slot before it is
// skipped, so that a small view can never make selection loop.
const maxAttempts = 64

// choose walks the hierarchy for each of m's k slots (see the package
// comment) and returns the chosen members.
func (t *Table) choose(m Member) []int32 {
	if t.k == 0 || len(t.members) == 0 {
		return nil
	}
	ownTop, inView := t.topIdx[domain.Top(m.Addr)]
	excludeTop := inView && len(t.tops) > 1

	// eligible is how many members m may choose at all; once they are all
	// chosen, further walks cannot succeed.
	eligible := len(t.members)
	if excludeTop {
		eligible -= t.tops[ownTop].size
	}
	if self, ok := t.index[m.ID]; ok && (!excludeTop || t.topOf(self) != ownTop) {
		eligible-- // m itself, where the previous line did not count it
	}
	if eligible <= 0 {
		return nil
	}

	chosen := make([]int32, 0, min(t.k, eligible))
	var h0 [32]byte
	var buf [32 + 15 + 4 + 8]byte
	for i := 1; i <= t.k && len(chosen) < eligible; i++ {
		b := append(buf[:0], "tarzan-mimic-v1"...)
		b = append(b, m.ID[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint64(b, t.epoch)
		h0 = sha256.Sum256(b)
		for a := range maxAttempts {
			h := h0
			if a > 0 {
				b := append(buf[:0], h0[:]...)
				b = binary.BigEndian.AppendUint32(b, uint32(a))
				h = sha256.Sum256(b)
			}
			c, ok := t.walk(h, ownTop, excludeTop)
			if !ok || t.members[c].ID == m.ID || slices.Contains(chosen, c) {
				continue
			}
			chosen = append(chosen, c)
			break
		}
	}
	return chosen
}

// walk follows h down the rings: top domain, middle domain, host. It fails
// when the top domain is m's own and that is excluded.
func (t *Table) walk(h [32]byte, ownTop int32, excludeTop bool) (int32, bool) {
	ti := t.top.successor(binary.BigEndian.Uint64(h[:8]))
	if excludeTop && ti == ownTop {
		return 0, false
	}
	var buf [33]byte
	copy(buf[:], h[:])
	top := &t.tops[ti]
	mi := top.children.ref[0]
	if len(top.children.pos) > 0 {
		buf[32] = 1
		h1 := sha256.Sum256(buf[:])
		mi = top.children.successor(binary.BigEndian.Uint64(h1[:8]))
	}
	mid := &t.mids[mi]
	if len(mid.children.pos) == 0 {
		return mid.children.ref[0], true
	}
	buf[32] = 2
	h2 := sha256.Sum256(buf[:])
	return mid.children.successor(binary.BigEndian.Uint64(h2[:8])), true
}

// topOf returns the index of member j's top domain.
func (t *Table) topOf(j int32) int32 {
	return t.topIdx[domain.Top(t.members[j].Addr)]
}
