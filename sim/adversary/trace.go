package adversary

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// MaxBins is the longest trace a Builder keeps, in bins (2^24: 46 hours
// at 10 ms bins). Observations beyond are dropped.
const MaxBins = 1 << 24

// Series is a sparse per-bin frame count series, stored compactly: one
// 32-bit word per non-empty bin (24 bits of bin, 8 bits of count; a bin
// holding more than 255 frames takes several words). The zero Series is
// empty.
type Series struct {
	runs []uint32 // bin<<8 | count, sorted by bin
}

// Len returns the number of words stored (about the number of non-empty
// bins).
func (s Series) Len() int { return len(s.runs) }

// Each calls fn for every non-empty bin in increasing bin order, once per
// bin.
func (s Series) Each(fn func(bin, count int)) {
	for i := 0; i < len(s.runs); {
		bin, count := s.at(&i)
		fn(bin, count)
	}
}

// at returns the bin at runs[*i] and its total count, advancing *i past
// every word of that bin.
func (s Series) at(i *int) (bin, count int) {
	bin = int(s.runs[*i] >> 8)
	for *i < len(s.runs) && int(s.runs[*i]>>8) == bin {
		count += int(s.runs[*i] & 0xff)
		*i++
	}
	return bin, count
}

// Total returns the number of frames in the series.
func (s Series) Total() int {
	t := 0
	for _, r := range s.runs {
		t += int(r & 0xff)
	}
	return t
}

// Dense returns the series as bins counts (bins beyond are left out).
func (s Series) Dense(bins int) []uint32 {
	d := make([]uint32, bins)
	for _, r := range s.runs {
		if b := int(r >> 8); b < bins {
			d[b] += r & 0xff
		}
	}
	return d
}

// addRuns counts n frames in bin, filling the last word first when it is
// the same bin.
func addRuns(runs []uint32, bin, n int) []uint32 {
	if k := len(runs); k > 0 {
		if last := runs[k-1]; int(last>>8) == bin && last&0xff < 0xff {
			c := min(n, int(0xff-last&0xff))
			runs[k-1] += uint32(c)
			n -= c
		}
	}
	for n > 0 {
		c := min(n, 0xff)
		runs = append(runs, uint32(bin)<<8|uint32(c))
		n -= c
	}
	return runs
}

// normalize sorts words by bin and merges the words of each bin, in place,
// so that only the last word of a bin may hold fewer than 255 frames.
func normalize(runs []uint32) []uint32 {
	slices.Sort(runs) // bin is in the high bits
	out := runs[:0]
	for i := 0; i < len(runs); {
		bin := runs[i] >> 8
		total := 0
		for ; i < len(runs) && runs[i]>>8 == bin; i++ {
			total += int(runs[i] & 0xff)
		}
		for total > 0 {
			c := min(total, 0xff)
			out = append(out, bin<<8|uint32(c))
			total -= c
		}
	}
	return slices.Clip(out)
}

// Link is the observed traffic of one directed link Src → Dst.
type Link struct {
	Src, Dst int
	Frames   uint64 // frames that left Src for Dst (lost ones included)
	Bytes    uint64 // their bytes
	Sent     Series // frames per bin by departure time from Src
	Arrived  Series // frames per bin by arrival time at Dst (lost ones excluded)
}

// Builder accumulates observations into a Trace. It is safe for
// concurrent use, so its Add or Observe can be called straight from a
// recorder hook such as simnet's Network.SetRecorder.
//
// It keeps, per directed link, the departure and arrival bins of frames
// (one word per non-empty bin), never per-frame records.
type Builder struct {
	mu      sync.Mutex
	n       int
	bin     time.Duration
	limit   int
	links   map[uint64]*linkAcc
	dropped uint64
}

type linkAcc struct {
	frames, bytes uint64
	sent, arrived []uint32
}

// NewBuilder returns a builder for a network of nodes numbered 0..nodes-1
// and bins of width bin (for example 10 ms). It panics if bin ≤ 0.
func NewBuilder(nodes int, bin time.Duration) *Builder {
	if bin <= 0 {
		panic("adversary: bin width must be positive")
	}
	return &Builder{n: nodes, bin: bin, limit: MaxBins, links: map[uint64]*linkAcc{}}
}

// SetLimit drops observations sent at or after d (an offset from the
// trace origin), bounding the trace's length and memory.
func (b *Builder) SetLimit(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit = min(MaxBins, int((d+b.bin-1)/b.bin))
}

// Add records one frame from src to dst of size bytes that left src at
// offset sent and arrived at dst at offset arrived (offsets from the trace
// origin; a negative arrived means it was lost). It returns false, and
// counts the frame in Dropped, when a node is out of range or sent is
// negative or beyond the limit.
func (b *Builder) Add(src, dst int, sent, arrived time.Duration, size int) bool {
	return b.AddN(src, dst, sent, arrived, size, 1)
}

// AddN records count identical frames (each of size bytes), as Add does:
// handy for traffic that is already binned. Dropped counts them all.
func (b *Builder) AddN(src, dst int, sent, arrived time.Duration, size, count int) bool {
	if count <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sb := int(sent / b.bin)
	if src < 0 || dst < 0 || src >= b.n || dst >= b.n || sent < 0 || sb >= b.limit {
		b.dropped += uint64(count)
		return false
	}
	key := uint64(src)<<32 | uint64(dst)
	a := b.links[key]
	if a == nil {
		a = &linkAcc{}
		b.links[key] = a
	}
	a.frames += uint64(count)
	a.bytes += uint64(max(size, 0)) * uint64(count)
	a.sent = addRuns(a.sent, sb, count)
	if ab := int(arrived / b.bin); arrived >= 0 && ab < b.limit {
		a.arrived = addRuns(a.arrived, ab, count)
	}
	return true
}

// Observe records a frame between addresses at wall-clock times, mapped
// through x; a zero arrived means the frame was lost. Frames from or to
// addresses x does not know are dropped (false). It fits simnet:
//
//	net.SetRecorder(func(o simnet.Observation) {
//		b.Observe(x, o.Src, o.Dst, o.Sent, o.Arrived, o.Size)
//	})
func (b *Builder) Observe(x *Index, src, dst netip.AddrPort, sent, arrived time.Time, size int) bool {
	s, ok1 := x.ID(src)
	d, ok2 := x.ID(dst)
	if !ok1 || !ok2 {
		b.mu.Lock()
		b.dropped++
		b.mu.Unlock()
		return false
	}
	a := time.Duration(-1)
	if !arrived.IsZero() {
		a = x.Offset(arrived)
	}
	return b.Add(s, d, x.Offset(sent), a, size)
}

// Dropped returns how many observations were not recorded.
func (b *Builder) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Trace returns a snapshot of what has been recorded; the builder may go
// on recording. The result does not depend on the order of the calls to
// Add.
func (b *Builder) Trace() *Trace {
	b.mu.Lock()
	keys := make([]uint64, 0, len(b.links))
	for k := range b.links {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t := &Trace{nodes: b.n, bin: b.bin, outLinks: make([][]int, b.n), inLinks: make([][]int, b.n)}
	t.links = make([]Link, len(keys))
	for i, k := range keys {
		a := b.links[k]
		t.links[i] = Link{
			Src: int(k >> 32), Dst: int(uint32(k)), Frames: a.frames, Bytes: a.bytes,
			Sent: Series{slices.Clone(a.sent)}, Arrived: Series{slices.Clone(a.arrived)},
		}
	}
	b.mu.Unlock()
	for i := range t.links { // sorting outside the lock keeps recorders going
		t.links[i].Sent.runs = normalize(t.links[i].Sent.runs)
		t.links[i].Arrived.runs = normalize(t.links[i].Arrived.runs)
	}

	for i, l := range t.links {
		t.frames += l.Frames
		t.bytes += l.Bytes
		t.outLinks[l.Src] = append(t.outLinks[l.Src], i)
		t.inLinks[l.Dst] = append(t.inLinks[l.Dst], i)
		for _, s := range []Series{l.Sent, l.Arrived} {
			if k := len(s.runs); k > 0 {
				t.bins = max(t.bins, int(s.runs[k-1]>>8)+1)
			}
		}
	}
	store := make([]uint32, 2*t.nodes*t.bins)
	t.out, t.in = make([][]uint32, t.nodes), make([][]uint32, t.nodes)
	for v := range t.nodes {
		t.out[v] = store[2*v*t.bins : (2*v+1)*t.bins : (2*v+1)*t.bins]
		t.in[v] = store[(2*v+1)*t.bins : (2*v+2)*t.bins : (2*v+2)*t.bins]
	}
	for _, l := range t.links {
		for _, r := range l.Sent.runs {
			t.out[l.Src][r>>8] += r & 0xff
		}
		for _, r := range l.Arrived.runs {
			t.in[l.Dst][r>>8] += r & 0xff
		}
	}
	return t
}

// Trace is what a global passive adversary recorded: for every directed
// link, how many frames crossed it in every time bin, and for every node
// its total outbound (by departure) and inbound (by arrival) frames per
// bin. Bins are numbered from 0 at the trace origin. A Trace is immutable
// and safe for concurrent use; slices it returns must not be modified.
type Trace struct {
	nodes, bins       int
	bin               time.Duration
	links             []Link
	outLinks, inLinks [][]int // link indices per node
	out, in           [][]uint32
	frames, bytes     uint64
}

// Nodes returns the number of nodes.
func (t *Trace) Nodes() int { return t.nodes }

// Bins returns the number of bins: one past the last bin with a frame.
func (t *Trace) Bins() int { return t.bins }

// Bin returns the bin width.
func (t *Trace) Bin() time.Duration { return t.bin }

// BinOf returns the bin holding offset d.
func (t *Trace) BinOf(d time.Duration) int { return int(d / t.bin) }

// Out returns node v's outbound frames per bin, by departure time.
func (t *Trace) Out(v int) []uint32 { return t.out[v] }

// In returns node v's inbound frames per bin, by arrival time.
func (t *Trace) In(v int) []uint32 { return t.in[v] }

// Links returns every observed directed link, sorted by (Src, Dst).
func (t *Trace) Links() []Link { return t.links }

// OutLinks returns the links leaving v.
func (t *Trace) OutLinks(v int) []Link { return t.pick(t.outLinks[v]) }

// InLinks returns the links entering v.
func (t *Trace) InLinks(v int) []Link { return t.pick(t.inLinks[v]) }

func (t *Trace) pick(idx []int) []Link {
	out := make([]Link, len(idx))
	for i, j := range idx {
		out[i] = t.links[j]
	}
	return out
}

// Frames returns the number of frames observed (lost ones included).
func (t *Trace) Frames() uint64 { return t.frames }

// Bytes returns the bytes of the frames observed.
func (t *Trace) Bytes() uint64 { return t.bytes }

// Index maps node addresses to the small integers a Trace uses, and wall
// clock times to offsets from the trace origin.
type Index struct {
	origin time.Time
	ids    map[netip.AddrPort]int
	addrs  []netip.AddrPort
}

// NewIndex numbers addrs 0..len-1 in the order given (sort them first for
// an order independent of how they were collected); origin is the time of
// bin 0. It fails on a duplicate address.
func NewIndex(origin time.Time, addrs []netip.AddrPort) (*Index, error) {
	x := &Index{origin: origin, ids: make(map[netip.AddrPort]int, len(addrs)), addrs: slices.Clone(addrs)}
	for i, a := range addrs {
		if _, dup := x.ids[a]; dup {
			return nil, fmt.Errorf("adversary: duplicate address %s", a)
		}
		x.ids[a] = i
	}
	return x, nil
}

// Len returns the number of nodes.
func (x *Index) Len() int { return len(x.addrs) }

// ID returns the number of address a.
func (x *Index) ID(a netip.AddrPort) (int, bool) {
	id, ok := x.ids[a]
	return id, ok
}

// Addr returns the address of node id.
func (x *Index) Addr(id int) netip.AddrPort { return x.addrs[id] }

// Origin returns the time of bin 0.
func (x *Index) Origin() time.Time { return x.origin }

// Offset returns t as an offset from the origin.
func (x *Index) Offset(t time.Time) time.Duration { return t.Sub(x.origin) }
