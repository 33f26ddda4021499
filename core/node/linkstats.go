package node

import (
	"errors"
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

// BuildBuckets are the upper bounds, in seconds, of the tunnel build and
// repair latency histograms (TunnelBuilds).
var BuildBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// latencyHist is a fixed-bucket histogram updated with atomics: a tunnel
// build or repair adds one observation, nothing on the data path does.
type latencyHist struct {
	counts [15]atomic.Uint64 // one per BuildBuckets bound, then +Inf; not cumulative
	sumNS  atomic.Int64
}

func (h *latencyHist) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(BuildBuckets) && s > BuildBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// Latencies is a histogram snapshot: Counts[i] observations took at most
// BuildBuckets[i] seconds (cumulative, as Prometheus wants), Count all of
// them, Sum their total.
type Latencies struct {
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

func (h *latencyHist) snapshot() Latencies {
	l := Latencies{Counts: make([]uint64, len(BuildBuckets)), Sum: time.Duration(h.sumNS.Load())}
	for i := range h.counts {
		l.Count += h.counts[i].Load()
		if i < len(BuildBuckets) {
			l.Counts[i] = l.Count
		}
	}
	return l
}

// buildStats are the outcomes of the tunnel builds callers asked for
// (BuildTunnel, BuildTunnelWith, BuildTunnelPath) and of repairs.
type buildStats struct {
	built, failed, repaired, repairFailed latencyHist
}

// TunnelBuilds are the latencies of tunnel builds and repairs by outcome.
type TunnelBuilds struct {
	Built, Failed, Repaired, RepairFailed Latencies
}

// TunnelBuilds reports the tunnel builds and repairs since the node
// started.
func (n *Node) TunnelBuilds() TunnelBuilds {
	b := &n.builds
	return TunnelBuilds{b.built.snapshot(), b.failed.snapshot(), b.repaired.snapshot(), b.repairFailed.snapshot()}
}

// noteBuild records a build that began at start.
func (n *Node) noteBuild(start time.Time, t *Tunnel, err error) (*Tunnel, error) {
	d := n.opts.Clock.Now().Sub(start)
	if err != nil {
		n.builds.failed.observe(d)
	} else {
		n.builds.built.observe(d)
		n.numberTunnel(t) // tunnelstats.go
	}
	return t, err
}

// noteRepair records a repair that began at start (one another repair of
// the same tunnel had already begun is not counted).
func (n *Node) noteRepair(start time.Time, err error) {
	d := n.opts.Clock.Now().Sub(start)
	switch {
	case errors.Is(err, errRepairRunning):
	case err != nil:
		n.builds.repairFailed.observe(d)
	default:
		n.builds.repaired.observe(d)
	}
}
