package mimic

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// pointsPerElement is V, the number of points each domain or host has on
// its ring (see the package comment). 64 points keep a domain's share of
// the ring within about ±12% of 1/n.
const pointsPerElement = 64

// ring is a consistent-hash ring sorted by position. A ring with one
// element has no points: every walk lands on it.
type ring struct {
	pos []uint64 // sorted point positions
	ref []int32  // ref[j] is the element owning pos[j]
}

// point is one element's point while a ring is being built.
type point struct {
	pos, tie uint64
	ref      int32
}

// ringBuilder builds rings, reusing its scratch space between them.
type ringBuilder struct{ scratch []point }

// build places each element refs[j] at the points derived from seeds[j].
func (b *ringBuilder) build(refs []int32, seeds [][32]byte) ring {
	if len(refs) == 1 {
		return ring{ref: []int32{refs[0]}}
	}
	pts := b.scratch[:0]
	for j, ref := range refs {
		x := binary.BigEndian.Uint64(seeds[j][0:8])
		tie := binary.BigEndian.Uint64(seeds[j][8:16])
		for range pointsPerElement {
			var p uint64
			x, p = splitMix64(x)
			pts = append(pts, point{pos: p, tie: tie, ref: ref})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		return cmp.Compare(a.tie, b.tie)
	})
	r := ring{pos: make([]uint64, len(pts)), ref: make([]int32, len(pts))}
	for j, p := range pts {
		r.pos[j], r.ref[j] = p.pos, p.ref
	}
	b.scratch = pts
	return r
}

// successor returns the element owning the first point at or after key,
// wrapping around the ring.
func (r *ring) successor(key uint64) int32 {
	if len(r.pos) == 0 {
		return r.ref[0]
	}
	j, _ := slices.BinarySearch(r.pos, key)
	if j == len(r.pos) {
		j = 0
	}
	return r.ref[j]
}

// splitMix64 advances the SplitMix64 state x and returns the new state and
// its output (Steele, Lea & Flood 2014).
func splitMix64(x uint64) (next, out uint64) {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return x, z ^ (z >> 31)
}
