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
// comment) and returns the chosen members. Which top domains m chooses
// depends only on m's own top domain, the view and the epoch, never on
// m's ID: IDs cost nothing to make, so a node whose ID steered its
// domains could make all of them its colluders' (DECISIONS, "mimic
// choice an adversary cannot steer"). The ID only spreads the nodes of one
// domain over the hosts of the domains they all chose.
func (t *Table) choose(m Member) []int32 {
	if t.k == 0 || len(t.members) == 0 {
		return nil
	}
	ownPrefix := domain.Top(m.Addr)
	ownTop, inView := t.topIdx[ownPrefix]
	excludeTop := inView && len(t.tops) > 1

	// eligible is how many members m may choose at all; once they are all
	// chosen, further walks cannot succeed.
	eligible := len(t.members)
	freeTops := len(t.tops) // top domains m may choose
	if excludeTop {
		eligible -= t.tops[ownTop].size
		freeTops--
	}
	if self, ok := t.index[m.ID]; ok && (!excludeTop || t.topOf(self) != ownTop) {
		eligible-- // m itself, where the previous line did not count it
	}
	if eligible <= 0 {
		return nil
	}

	chosen := make([]int32, 0, min(t.k, eligible))
	tops := make([]int32, 0, min(t.k, freeTops)) // distinct top domains chosen
	var h0 [32]byte
	var buf [32 + 15 + 16 + 1 + 4 + 8]byte
	for i := 1; i <= t.k && len(chosen) < eligible; i++ {
		b := append(buf[:0], "tarzan-mimic-v2"...)
		b = append(b, ownPrefix.Addr().AsSlice()...)
		b = append(b, byte(ownPrefix.Bits()))
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
			ti := t.top.successor(binary.BigEndian.Uint64(h[:8]))
			if excludeTop && ti == ownTop {
				continue
			}
			// A top domain an earlier slot chose is skipped while any
			// is left that none chose: then the sequence of domains is
			// the same for every node of m's domain, whatever its ID.
			newTop := !slices.Contains(tops, ti)
			if !newTop && len(tops) < freeTops {
				continue
			}
			b := append(buf[:0], h[:]...)
			b = append(b, m.ID[:]...)
			c := t.below(ti, sha256.Sum256(b))
			if t.members[c].ID == m.ID || slices.Contains(chosen, c) {
				continue
			}
			chosen = append(chosen, c)
			if newTop {
				tops = append(tops, ti)
			}
			break
		}
	}
	return chosen
}

// below follows s down from top domain ti: its first 8 bytes pick the
// middle domain, the next 8 the host.
func (t *Table) below(ti int32, s [32]byte) int32 {
	top := &t.tops[ti]
	mi := top.children.successor(binary.BigEndian.Uint64(s[0:8]))
	return t.mids[mi].children.successor(binary.BigEndian.Uint64(s[8:16]))
}

// topOf returns the index of member j's top domain.
func (t *Table) topOf(j int32) int32 {
	return t.topIdx[domain.Top(t.members[j].Addr)]
}
