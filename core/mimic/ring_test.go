package mimic

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
)

func seedsFor(n int) ([]int32, [][32]byte) {
	refs := make([]int32, n)
	seeds := make([][32]byte, n)
	for i := range n {
		refs[i] = int32(1000 + i)
		seeds[i] = sha256.Sum256(binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	return refs, seeds
}

func TestRadixSortMatchesComparisonSort(t *testing.T) {
	refs, seeds := seedsFor(radixMin/pointsPerElement*3 + 7)
	var b ringBuilder
	r := b.build(refs, seeds)
	if len(r.pos) != len(refs)*pointsPerElement || len(r.pos) < radixMin {
		t.Fatalf("ring has %d points, want %d (radix path)", len(r.pos), len(refs)*pointsPerElement)
	}
	type pr struct {
		pos uint64
		ref int32
	}
	var want []pr
	for j := range refs {
		x := binary.BigEndian.Uint64(seeds[j][:8])
		for range pointsPerElement {
			var p uint64
			x, p = splitMix64(x)
			want = append(want, pr{p, refs[j]})
		}
	}
	slices.SortFunc(want, func(a, b pr) int { return cmp.Compare(a.pos, b.pos) })
	for i := range want {
		if r.pos[i] != want[i].pos || r.ref[i] != want[i].ref {
			t.Fatalf("point %d = (%x, %d), want (%x, %d)", i, r.pos[i], r.ref[i], want[i].pos, want[i].ref)
		}
	}
}

func TestRingTiesIndependentOfOrder(t *testing.T) {
	// Equal first 8 bytes give every point of both elements a twin.
	var s1, s2 [32]byte
	s1[8], s2[8] = 2, 1
	for _, n := range []int{1, radixMin} { // both sort paths
		refs, seeds := seedsFor(n)
		fwd := (&ringBuilder{}).build(append(slices.Clone(refs), 1, 2), append(slices.Clone(seeds), s1, s2))
		rev := (&ringBuilder{}).build(append(slices.Clone(refs), 2, 1), append(slices.Clone(seeds), s2, s1))
		if !slices.Equal(fwd.pos, rev.pos) || !slices.Equal(fwd.ref, rev.ref) {
			t.Fatalf("n=%d: tied points are ordered by input order", n)
		}
		if got := fwd.successor(fwd.pos[slices.Index(fwd.ref, 1)]); got != 2 {
			t.Fatalf("n=%d: the tie went to element %d, want the lower seed (2)", n, got)
		}
	}
}

func TestRingSuccessorWraps(t *testing.T) {
	refs, seeds := seedsFor(3)
	r := (&ringBuilder{}).build(refs, seeds)
	last := r.pos[len(r.pos)-1]
	if r.successor(last+1) != r.ref[0] || r.successor(0) != r.ref[0] {
		t.Errorf("successor does not wrap to the first point")
	}
	if r.successor(r.pos[5]) != r.ref[5] {
		t.Errorf("a point is not its own successor")
	}
	single := (&ringBuilder{}).build([]int32{42}, seeds[:1])
	if single.successor(12345) != 42 {
		t.Errorf("a one-element ring did not return its element")
	}
}
