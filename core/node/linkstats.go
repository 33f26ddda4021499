package node

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
)

// LinkStat is one mimic link's traffic since this node first linked to
// the peer, for `tarzan status` and the metrics endpoint. Reading it costs
// the data path nothing: the frame counters are the ones the shaper
// already keeps (peerLink.dataSent and its siblings), which count up
// forever; the shaper takes its per-tick differences through linkSeen.
type LinkStat struct {
	Peer      identity.ID
	Up        bool
	UpSince   time.Time // when the link last came up (zero: never)
	Handshake time.Time // when its current session's handshake completed
	LastRecv  time.Time // last authenticated frame from the peer (zero: none)
	LastSent  time.Time
	// Frames are data and cover together; Cover* count the padding alone.
	FramesIn, FramesOut uint64
	CoverIn, CoverOut   uint64
}

// BytesIn is what the frames received occupied on the wire above the
// transport: every link frame is link.FrameSize bytes.
func (s LinkStat) BytesIn() uint64 { return s.FramesIn * link.FrameSize }

// BytesOut is BytesIn's counterpart for frames sent.
func (s LinkStat) BytesOut() uint64 { return s.FramesOut * link.FrameSize }

// LinkStats reports every link this node holds, up or not, ordered by peer
// ID.
func (n *Node) LinkStats() []LinkStat {
	n.linkMu.Lock()
	links := make([]*peerLink, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.linkMu.Unlock()
	out := make([]LinkStat, 0, len(links))
	for _, l := range links {
		s := LinkStat{
			Peer:      l.id,
			LastRecv:  unixNanos(l.lastRecv.Load()),
			LastSent:  unixNanos(l.lastSent.Load()),
			CoverIn:   l.coverRecv.Load(),
			CoverOut:  l.coverSent.Load(),
			FramesIn:  l.coverRecv.Load() + l.dataRecv.Load(),
			FramesOut: l.coverSent.Load() + l.dataSent.Load(),
		}
		l.mu.Lock()
		s.Up, s.UpSince, s.Handshake = l.cur != nil, l.upSince, l.handshakeAt
		l.mu.Unlock()
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b LinkStat) int { return slices.Compare(a.Peer[:], b.Peer[:]) })
	return out
}

func unixNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// linkSeen is what the shaper last read of a link's monotonic frame
// counters, so that it hands the cover policy per-tick differences while
// the counters themselves keep counting for LinkStats.
type linkSeen struct {
	dataSent, coverSent, dataRecv, coverRecv uint64
}

// since returns how much c grew since the last call with the same last.
func since(c *atomic.Uint64, last *uint64) uint64 {
	v := c.Load()
	d := v - *last
	*last = v
	return d
}
