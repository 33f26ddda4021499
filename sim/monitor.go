package sim

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
)

// monitor samples the running network: membership, memory, rounds.
type monitor struct {
	cfg      Config
	c        *cluster
	r        *Report
	baseline uint64
	started  time.Time // every node running
	last     time.Time // last progress line
	lastLen  int
}

func (m *monitor) tick() time.Duration {
	if m.cfg.Nodes+m.cfg.SybilNodes > 2000 {
		return time.Second
	}
	return 250 * time.Millisecond
}

// sample records one point of the curve and the memory peak.
func (m *monitor) sample() CurveSample {
	live := m.c.live()
	var sum float64
	full := 0
	for _, x := range live {
		if len(live) < 2 {
			break // no one to know: nothing to average (and no NaN to plot)
		}
		l := x.n.View().Len()
		sum += float64(l) / float64(len(live)-1)
		if l >= len(live)-1 {
			full++
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.r.PeakHeapBytes = max(m.r.PeakHeapBytes, ms.HeapAlloc)
	m.r.PeakSysBytes = max(m.r.PeakSysBytes, ms.Sys)
	m.r.PeakGoroutines = max(m.r.PeakGoroutines, runtime.NumGoroutine())
	n := float64(max(len(live), 1))
	s := CurveSample{
		T:         time.Since(m.started).Seconds(),
		MeanView:  sum / n,
		FullShare: float64(full) / n,
		Round:     medianRound(live),
		HeapBytes: ms.HeapAlloc,
	}
	if m.started.IsZero() {
		s.T = 0
	}
	m.r.Curve = append(m.r.Curve, s)
	return s
}

func medianRound(live []*member) float64 {
	var rounds []uint64
	for _, x := range live {
		if s, ok := x.disc.(interface{ Rounds() uint64 }); ok {
			rounds = append(rounds, s.Rounds())
		}
	}
	if len(rounds) == 0 {
		return 0
	}
	slices.Sort(rounds)
	return float64(rounds[len(rounds)/2])
}

// progress writes a progress line at most once a second.
func (m *monitor) progress(format string, a ...any) {
	w := m.cfg.Progress
	if w == nil || time.Since(m.last) < time.Second {
		return
	}
	m.last = time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	line := fmt.Sprintf("sim %6.1fs  %s  heap %s", time.Since(m.started).Seconds(), fmt.Sprintf(format, a...), bytesStr(float64(ms.HeapAlloc)))
	if m.started.IsZero() {
		line = fmt.Sprintf("sim  %s  heap %s", fmt.Sprintf(format, a...), bytesStr(float64(ms.HeapAlloc)))
	}
	pad := max(0, m.lastLen-len(line))
	m.lastLen = len(line)
	fmt.Fprintf(w, "\r%s%*s", line, pad, "")
}

func (m *monitor) waitMembership(ctx context.Context) error {
	for {
		s := m.sample()
		m.r.MeanViewShare = s.MeanView
		m.progress("full membership %d/%d nodes, mean view %.2f%%, gossip round %.0f",
			int(s.FullShare*float64(len(m.c.live()))+0.5), len(m.c.live()), 100*s.MeanView, s.Round)
		if s.FullShare == 1 {
			m.r.Converged = true
			m.r.MembershipSeconds = s.T
			m.r.MembershipRounds = s.Round
			return nil
		}
		// Stop before the machine runs out of memory: a run that cannot
		// hold full membership reports where it stood instead.
		if err := heapNearLimit(); err != nil {
			m.r.MembershipSeconds = s.T
			m.r.MembershipRounds = s.Round
			return fmt.Errorf("sim: stopped waiting for full membership after %.0fs (%.0f gossip rounds): %w; %.2f%% of nodes know every other, mean view %.2f%%",
				s.T, s.Round, err, 100*s.FullShare, 100*s.MeanView)
		}
		select {
		case <-ctx.Done():
			m.r.MembershipSeconds = s.T
			m.r.MembershipRounds = s.Round
			return fmt.Errorf("sim: no full membership after %.0fs (%.0f gossip rounds): %.2f%% of nodes know every other, mean view %.2f%%: %w",
				s.T, s.Round, 100*s.FullShare, 100*s.MeanView, context.Cause(ctx))
		case <-time.After(m.tick()):
		}
	}
}

func (m *monitor) waitLinks(ctx context.Context) error {
	limit := time.After(60*time.Second + time.Duration(m.cfg.Nodes)*10*time.Millisecond)
	for {
		m.sample()
		up, total := 0, 0
		for _, x := range m.c.live() {
			for _, mm := range x.n.Mimics() {
				total++
				if mm.Up {
					up++
				}
			}
		}
		m.progress("mimic links up %d/%d", up, total)
		if up == total {
			m.r.LinksUp = true
			m.r.LinksSeconds = time.Since(m.started).Seconds()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: mimic links: %d of %d up: %w", up, total, context.Cause(ctx))
		case <-limit:
			return fmt.Errorf("sim: mimic links: %d of %d up after the wait; tunnels built anyway", up, total)
		case <-time.After(m.tick()):
		}
	}
}

// gossipRates fills the per-node per-round gossip figures.
func (m *monitor) gossipRates() {
	live := m.c.live()
	sum, ok := gossipStats(live)
	if !ok || sum["round"] == 0 {
		return
	}
	var frames uint64
	for _, x := range live {
		frames += x.n.Stat(node.EventGossipOut)
	}
	rounds := float64(sum["round"])
	m.r.GossipBytesPerNodeRound = float64(sum["bytes_out"]) / rounds
	m.r.GossipFramesPerNodeRound = float64(frames) / rounds
	m.r.GossipWireBytesPerRound = m.r.GossipFramesPerNodeRound * 1408
}

// beforeClose reads what must be read while the nodes still run.
func (m *monitor) beforeClose() {
	r := m.r
	// Network totals now: once the network shuts down, every frame still
	// sent vanishes as no_listener, which says nothing about the run.
	st := m.c.net.Stats()
	r.FramesSent = st.Sent
	for k, v := range st.Dropped {
		r.FramesDropped += v
		if v > 0 {
			if r.DroppedBy == nil {
				r.DroppedBy = map[string]uint64{}
			}
			r.DroppedBy[k] = v
		}
	}
	for _, x := range m.c.live() {
		r.PeersAdmitted += x.n.Stat(node.EventAdmitted)
	}
	if !m.started.IsZero() {
		r.AdmissionsPerSec = float64(r.PeersAdmitted) / time.Since(m.started).Seconds()
		if !r.Converged {
			m.project()
		}
	}
}

// finish fills the totals at the end of a run.
func (m *monitor) finish() {
	if m.cfg.Progress != nil && m.lastLen > 0 {
		fmt.Fprintln(m.cfg.Progress)
	}
	r := m.r
	m.sample()
	total := m.cfg.Nodes + m.cfg.SybilNodes
	if r.PeakHeapBytes > m.baseline {
		r.PeakHeapPerNode = float64(r.PeakHeapBytes-m.baseline) / float64(total)
	}
	if m.c.tables != nil {
		r.TableBuilds, r.TableHits = m.c.tables.Builds.Load(), m.c.tables.Hits.Load()
		r.DescVerified, r.DescHits = m.c.descs.Verified.Load(), m.c.descs.Hits.Load()
	}

	if r.GossipBytesPerNodeRound == 0 {
		m.gossipRates()
	}
}

// project says, for a run that did not reach full membership, what it
// would take at the rates measured: every node must admit every other
// (each admission a signed and verified reachability proof), and each
// admitted peer costs every node that holds it the heap measured here.
func (m *monitor) project() {
	r := m.r
	live := m.c.live()
	n := uint64(len(live))
	if n < 2 {
		return
	}
	var entries uint64
	for _, x := range live {
		entries += uint64(x.n.View().Len())
	}
	r.ViewEntries = entries
	full := n * (n - 1)
	if entries == 0 || entries >= full {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > m.baseline {
		r.HeapPerViewEntry = float64(ms.HeapAlloc-m.baseline) / float64(entries)
		r.ProjectedHeapBytes = r.HeapPerViewEntry * float64(full)
	}
	if r.AdmissionsPerSec > 0 {
		r.ProjectedSeconds = float64(full-entries) / r.AdmissionsPerSec
	}
	r.Notes = append(r.Notes, fmt.Sprintf(
		"membership incomplete: %d of %d view entries (%.2f%%) after %.0fs; at %.0f admissions/s the rest would take %.0f s more, and at %s of heap per view entry full membership would hold %s",
		entries, full, 100*float64(entries)/float64(full), time.Since(m.started).Seconds(),
		r.AdmissionsPerSec, r.ProjectedSeconds, bytesStr(r.HeapPerViewEntry), bytesStr(r.ProjectedHeapBytes)))
}
