package adversary

import "time"

// Residual holds, per node and bin, the frames that flow conservation does
// not explain (see Residuals).
type Residual struct {
	Horizon int        // bins an inbound frame may wait to explain an outbound one
	Src     [][]uint32 // outbound frames not explained by earlier inbound frames
	Sink    [][]uint32 // inbound frames that explained no outbound frame
}

// Residuals matches, at every node, outbound frames to the inbound frames
// that could have caused them: a relay forwards a frame shortly after it
// arrives, on a different link. An outbound frame to neighbour Y in bin b
// is explained by an unused inbound frame from a neighbour X ≠ Y that
// arrived in bins [b−h, b], h = ⌈horizon/bin⌉, oldest first (FIFO).
// Outbound frames left unexplained are counted in Src at their departure
// bin (the node looks like a source), inbound frames never used in Sink at
// their arrival bin (it looks like a sink).
//
// A relay without cover has residuals near zero; an initiator's requests
// are Src and its responses Sink, an exit the reverse. Cover traffic that
// is absorbed by the receiving mimic adds Src at its sender and Sink at
// its receiver, and cover received from one neighbour can "explain" a
// frame sent to another: that is how cover hides originators from this
// analysis. Ties within a bin are resolved by link order (Src, Dst), so the
// result is deterministic.
func Residuals(tr *Trace, horizon time.Duration) *Residual {
	h := 0
	if horizon > 0 {
		h = int((horizon + tr.bin - 1) / tr.bin)
	}
	r := &Residual{Horizon: h, Src: make([][]uint32, tr.nodes), Sink: make([][]uint32, tr.nodes)}
	store := make([]uint32, 2*tr.nodes*tr.bins)
	for v := range tr.nodes {
		r.Src[v] = store[2*v*tr.bins : (2*v+1)*tr.bins : (2*v+1)*tr.bins]
		r.Sink[v] = store[(2*v+1)*tr.bins : (2*v+2)*tr.bins : (2*v+2)*tr.bins]
		residualNode(tr, v, h, r.Src[v], r.Sink[v])
	}
	return r
}

type credit struct{ bin, left int }

// creditQueue is the FIFO of unused inbound frames from one neighbour.
type creditQueue struct {
	from int
	q    []credit
	head int
	cur  int // cursor into the in-link's Arrived runs
	runs Series
}

func (c *creditQueue) empty() bool { return c.head == len(c.q) }

func (c *creditQueue) pop() {
	c.head++
	switch {
	case c.head == len(c.q):
		c.q, c.head = c.q[:0], 0
	case c.head >= 1024 && 2*c.head >= len(c.q):
		c.q, c.head = c.q[:copy(c.q, c.q[c.head:])], 0
	}
}

type outCursor struct {
	to   int
	cur  int
	runs Series
}

func residualNode(tr *Trace, v, h int, src, sink []uint32) {
	ins := make([]creditQueue, len(tr.inLinks[v]))
	for i, li := range tr.inLinks[v] {
		ins[i] = creditQueue{from: tr.links[li].Src, runs: tr.links[li].Arrived}
	}
	outs := make([]outCursor, len(tr.outLinks[v]))
	for i, li := range tr.outLinks[v] {
		outs[i] = outCursor{to: tr.links[li].Dst, runs: tr.links[li].Sent}
	}
	for {
		// The next bin with an event.
		b := -1
		for i := range ins {
			if c := &ins[i]; c.cur < len(c.runs.runs) {
				if nb := int(c.runs.runs[c.cur] >> 8); b < 0 || nb < b {
					b = nb
				}
			}
		}
		for i := range outs {
			if o := &outs[i]; o.cur < len(o.runs.runs) {
				if nb := int(o.runs.runs[o.cur] >> 8); b < 0 || nb < b {
					b = nb
				}
			}
		}
		if b < 0 {
			break
		}
		// Expire credits too old to explain anything from b on.
		for i := range ins {
			c := &ins[i]
			for !c.empty() && c.q[c.head].bin < b-h {
				sink[c.q[c.head].bin] += uint32(c.q[c.head].left)
				c.pop()
			}
		}
		// Arrivals in b.
		for i := range ins {
			c := &ins[i]
			if c.cur < len(c.runs.runs) && int(c.runs.runs[c.cur]>>8) == b {
				_, n := c.runs.at(&c.cur)
				c.q = append(c.q, credit{b, n})
			}
		}
		// Departures in b, each explained by the oldest credit from another
		// neighbour.
		for i := range outs {
			o := &outs[i]
			if o.cur >= len(o.runs.runs) || int(o.runs.runs[o.cur]>>8) != b {
				continue
			}
			_, n := o.runs.at(&o.cur)
			for n > 0 {
				best := -1
				for j := range ins {
					c := &ins[j]
					if c.from == o.to || c.empty() {
						continue
					}
					if best < 0 || c.q[c.head].bin < ins[best].q[ins[best].head].bin {
						best = j
					}
				}
				if best < 0 {
					src[b] += uint32(n)
					break
				}
				c := &ins[best]
				take := min(n, c.q[c.head].left)
				n -= take
				if c.q[c.head].left -= take; c.q[c.head].left == 0 {
					c.pop()
				}
			}
		}
	}
	for i := range ins {
		c := &ins[i]
		for ; !c.empty(); c.pop() {
			sink[c.q[c.head].bin] += uint32(c.q[c.head].left)
		}
	}
}
