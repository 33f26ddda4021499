package mimic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/tarzan-net/tarzan/core/domain"
)

// Member is one node of the view: its ID and the address its domains are
// taken from.
type Member struct {
	ID   [32]byte
	Addr netip.Addr
}

// Table holds every member's mimics for one view and one epoch. It is
// immutable after NewTable and safe for concurrent reads. Slices it
// returns are copies the caller owns.
type Table struct {
	epoch uint64
	k     int

	members []Member           // deduplicated, in input order
	index   map[[32]byte]int32 // ID -> members index

	top    ring                   // refs into tops
	tops   []domainNode           // children refs into mids
	mids   []domainNode           // children refs into members
	topIdx map[netip.Prefix]int32 // top prefix -> tops index

	chosen [][]int32 // per member, in order i = 1..k
	mimics [][]int32 // per member, symmetric set sorted by ID
}

// domainNode is one domain of the hierarchy with the ring of what lies
// directly below it.
type domainNode struct {
	prefix   netip.Prefix
	size     int // members inside the domain
	children ring
	list     []int32 // children while building
}

// NewTable computes the mimics of every member in epoch for a view of
// members; each member chooses k mimics. members may include the local
// node. Of members sharing an ID the first wins; members with an invalid
// address have no place in the domain hierarchy and are left out.
func NewTable(members []Member, epoch uint64, k int) *Table {
	return newTable(members, epoch, k, false)
}

// newTable builds a table; keepRings keeps the consistent-hash rings,
// which only Choose needs once every member's choice is made. Without
// them a table is about a tenth of the size (1.2 MB → 0.1 MB at 1,000
// members), which matters wherever many tables live at once: a
// simulator's nodes each hold one while their views differ.
func newTable(members []Member, epoch uint64, k int, keepRings bool) *Table {
	t := &Table{
		epoch:  epoch,
		k:      max(k, 0),
		index:  make(map[[32]byte]int32, len(members)),
		topIdx: make(map[netip.Prefix]int32),
	}
	for _, m := range members {
		if !m.Addr.IsValid() {
			continue
		}
		if _, dup := t.index[m.ID]; dup {
			continue
		}
		t.index[m.ID] = int32(len(t.members))
		t.members = append(t.members, m)
	}
	t.buildHierarchy()
	t.chosen = make([][]int32, len(t.members))
	for j, m := range t.members {
		t.chosen[j] = t.choose(m)
	}
	t.buildMimics()
	if !keepRings {
		t.top = ring{}
		for i := range t.tops {
			t.tops[i].children = ring{}
		}
		for i := range t.mids {
			t.mids[i].children = ring{}
		}
	}
	return t
}

// buildHierarchy groups the members by domain and builds every ring.
func (t *Table) buildHierarchy() {
	midIdx := make(map[netip.Prefix]int32)
	for j, m := range t.members {
		lv := domain.Of(m.Addr)
		ti, ok := t.topIdx[lv[domain.TopLevel]]
		if !ok {
			ti = int32(len(t.tops))
			t.topIdx[lv[domain.TopLevel]] = ti
			t.tops = append(t.tops, domainNode{prefix: lv[domain.TopLevel]})
		}
		mi, ok := midIdx[lv[domain.MiddleLevel]]
		if !ok {
			mi = int32(len(t.mids))
			midIdx[lv[domain.MiddleLevel]] = mi
			t.mids = append(t.mids, domainNode{prefix: lv[domain.MiddleLevel]})
			t.tops[ti].list = append(t.tops[ti].list, mi)
		}
		t.tops[ti].size++
		t.mids[mi].size++
		t.mids[mi].list = append(t.mids[mi].list, int32(j))
	}

	// The scratch space of a large table's rings is megabytes; reusing
	// it between tables spares the allocator and the collector (a node
	// rebuilds its table whenever its view changes).
	b := builderPool.Get().(*ringBuilder)
	defer builderPool.Put(b)
	var seeds [][32]byte
	domainSeeds := func(nodes []domainNode, refs []int32) [][32]byte {
		seeds = seeds[:0]
		for _, r := range refs {
			seeds = append(seeds, t.domainSeed(nodes[r].prefix))
		}
		return seeds
	}
	if len(t.tops) > 0 {
		all := make([]int32, len(t.tops))
		for i := range all {
			all[i] = int32(i)
		}
		t.top = b.build(all, domainSeeds(t.tops, all))
	}
	for i := range t.tops {
		n := &t.tops[i]
		n.children = b.build(n.list, domainSeeds(t.mids, n.list))
		n.list = nil
	}
	for i := range t.mids {
		n := &t.mids[i]
		seeds = seeds[:0]
		for _, r := range n.list {
			seeds = append(seeds, t.hostSeed(t.members[r].ID))
		}
		n.children = b.build(n.list, seeds)
		n.list = nil
	}
}

// buildMimics makes the symmetric sets from the chosen ones.
func (t *Table) buildMimics() {
	t.mimics = make([][]int32, len(t.members))
	for a, cs := range t.chosen {
		for _, b := range cs {
			t.mimics[a] = append(t.mimics[a], b)
			t.mimics[b] = append(t.mimics[b], int32(a))
		}
	}
	for a, ms := range t.mimics {
		slices.SortFunc(ms, func(x, y int32) int {
			return bytes.Compare(t.members[x].ID[:], t.members[y].ID[:])
		})
		t.mimics[a] = slices.Compact(ms)
	}
}

// domainSeed is H("tarzan-dom" || epoch || prefix address bytes || bits).
func (t *Table) domainSeed(p netip.Prefix) [32]byte {
	buf := make([]byte, 0, 10+8+16+1)
	buf = append(buf, "tarzan-dom"...)
	buf = binary.BigEndian.AppendUint64(buf, t.epoch)
	buf = append(buf, p.Addr().AsSlice()...)
	buf = append(buf, byte(p.Bits()))
	return sha256.Sum256(buf)
}

// hostSeed is H("tarzan-host" || epoch || ID).
func (t *Table) hostSeed(id [32]byte) [32]byte {
	buf := make([]byte, 0, 11+8+32)
	buf = append(buf, "tarzan-host"...)
	buf = binary.BigEndian.AppendUint64(buf, t.epoch)
	buf = append(buf, id[:]...)
	return sha256.Sum256(buf)
}

// Chosen returns the mimics id chose, in order i = 1..k; fewer than k when
// the view is too small. It returns nil when id is not in the table.
func (t *Table) Chosen(id [32]byte) [][32]byte {
	j, ok := t.index[id]
	if !ok {
		return nil
	}
	return t.ids(t.chosen[j])
}

// Mimics returns id's symmetric mimic set: the mimics id chose and the
// members that chose id, sorted by ID, without duplicates. It returns nil
// when id is not in the table.
func (t *Table) Mimics(id [32]byte) [][32]byte {
	j, ok := t.index[id]
	if !ok {
		return nil
	}
	return t.ids(t.mimics[j])
}

// AreMimics reports whether a chose b or b chose a. Traffic may cross a
// link only between mimics.
func (t *Table) AreMimics(a, b [32]byte) bool {
	ja, ok := t.index[a]
	if !ok {
		return false
	}
	jb, ok := t.index[b]
	if !ok {
		return false
	}
	return slices.Contains(t.chosen[ja], jb) || slices.Contains(t.chosen[jb], ja)
}

// Choose computes the mimics m would choose in this table's view and epoch,
// whether or not m is a member: a node not yet in the view can see where it
// will connect once admitted (assuming its own arrival changes nothing).
// For a member with the same address it equals Chosen(m.ID).
func (t *Table) Choose(m Member) [][32]byte {
	if !m.Addr.IsValid() {
		return nil
	}
	// The rings were dropped after the build: walk a rebuilt copy.
	return NewChooser(t.members, t.epoch, t.k).Choose(m)
}

// Len returns the number of members in the table.
func (t *Table) Len() int { return len(t.members) }

// Epoch returns the epoch the table was computed for.
func (t *Table) Epoch() uint64 { return t.epoch }

// K returns the number of mimics each member chooses.
func (t *Table) K() int { return t.k }

// Member returns the member with id.
func (t *Table) Member(id [32]byte) (Member, bool) {
	j, ok := t.index[id]
	if !ok {
		return Member{}, false
	}
	return t.members[j], true
}

func (t *Table) ids(refs []int32) [][32]byte {
	if len(refs) == 0 {
		return nil
	}
	out := make([][32]byte, len(refs))
	for i, r := range refs {
		out[i] = t.members[r].ID
	}
	return out
}
