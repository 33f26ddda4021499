package mimic

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
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

// point is one element's point while a ring is being built; j indexes
// the element in the build call.
type point struct {
	pos uint64
	j   int32
}

// ringBuilder builds rings, reusing its scratch space between them.
type ringBuilder struct{ scratch, tmp []point }

var builderPool = sync.Pool{New: func() any { return new(ringBuilder) }}

// build places each element refs[j] at the points derived from seeds[j].
func (b *ringBuilder) build(refs []int32, seeds [][32]byte) ring {
	if len(refs) == 1 {
		return ring{ref: []int32{refs[0]}}
	}
	pts := slices.Grow(b.scratch[:0], len(refs)*pointsPerElement)
	for j := range refs {
		x := binary.BigEndian.Uint64(seeds[j][0:8])
		for range pointsPerElement {
			var p uint64
			x, p = splitMix64(x)
			pts = append(pts, point{pos: p, j: int32(j)})
		}
	}
	if len(pts) >= radixMin {
		b.tmp = slices.Grow(b.tmp[:0], len(pts))[:len(pts)]
		radixSort(pts, b.tmp)
	} else {
		slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.pos, b.pos) })
	}
	// Two points at one position (about never, with 64-bit positions):
	// order them by the rest of the seed so that every view agrees.
	for i := 1; i < len(pts); i++ {
		if pts[i].pos == pts[i-1].pos {
			k := i + 1
			for k < len(pts) && pts[k].pos == pts[i].pos {
				k++
			}
			slices.SortFunc(pts[i-1:k], func(a, b point) int {
				return bytes.Compare(seeds[a.j][8:], seeds[b.j][8:])
			})
			i = k - 1
		}
	}
	r := ring{pos: make([]uint64, len(pts)), ref: make([]int32, len(pts))}
	for i, p := range pts {
		r.pos[i], r.ref[i] = p.pos, refs[p.j]
	}
	b.scratch = pts
	return r
}

// radixMin is the ring size from which a radix sort beats a comparison
// sort; large top-level rings (10,000 domains, 640,000 points) dominate
// the cost of NewTable.
const radixMin = 4096

// radixSort sorts pts by pos with an LSD radix sort, one byte per pass;
// tmp has the length of pts.
func radixSort(pts, tmp []point) {
	var counts [8][256]int
	for _, p := range pts {
		for d := range 8 {
			counts[d][byte(p.pos>>(8*d))]++
		}
	}
	src, dst := pts, tmp
	for d := range 8 {
		c := &counts[d]
		if c[byte(src[0].pos>>(8*d))] == len(src) {
			continue // every point has the same digit here
		}
		sum := 0
		for i, n := range c {
			c[i] = sum
			sum += n
		}
		for _, p := range src {
			k := byte(p.pos >> (8 * d))
			dst[c[k]] = p
			c[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &pts[0] {
		copy(pts, src)
	}
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
