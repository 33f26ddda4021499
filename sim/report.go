package sim

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a simulation measured. Durations are in seconds.
type Report struct {
	Nodes        int    `json:"nodes"`
	SybilNodes   int    `json:"sybil_nodes,omitempty"`
	SybilDomains int    `json:"sybil_domains,omitempty"`
	Domains      int    `json:"domains"`
	PerMid       int    `json:"nodes_per_24"`
	K            int    `json:"k"`
	Hops         int    `json:"hops"`
	Discovery    string `json:"discovery"`
	Seed         uint64 `json:"seed"`
	Shared       bool   `json:"shared_caches"`
	// SelectionOnly: no node ran (tarzan sim --selection-only); only the
	// Sybil shares are measured.
	SelectionOnly bool `json:"selection_only,omitempty"`

	StartSeconds      float64 `json:"start_s"`           // starting every node
	Converged         bool    `json:"full_membership"`   // every node knew every other
	MembershipSeconds float64 `json:"membership_s"`      // from the last node's start
	MembershipRounds  float64 `json:"membership_rounds"` // median gossip round then
	MeanViewShare     float64 `json:"mean_view_share"`   // at the end of the wait
	LinksUp           bool    `json:"mimic_links_up"`
	LinksSeconds      float64 `json:"mimic_links_s"` // from the last node's start

	GossipBytesPerNodeRound  float64 `json:"gossip_bytes_per_node_round"`  // plugin message bytes
	GossipFramesPerNodeRound float64 `json:"gossip_frames_per_node_round"` // node gossip_out
	GossipWireBytesPerRound  float64 `json:"gossip_wire_bytes_per_node_round"`

	MimicAgreement  float64        `json:"mimic_proposals_verified"` // see mimicAgreement
	Handshakes      HandshakeShare `json:"handshakes"`
	HandshakesAfter HandshakeShare `json:"handshakes_steady"` // once every mimic link was up

	Tunnels TunnelStats `json:"tunnels"`

	PeakHeapBytes    uint64            `json:"peak_heap_bytes"`
	PeakHeapPerNode  float64           `json:"peak_heap_per_node_bytes"`
	PeakSysBytes     uint64            `json:"peak_sys_bytes"`
	PeakGoroutines   int               `json:"peak_goroutines"`
	WallSeconds      float64           `json:"wall_s"`
	TableBuilds      uint64            `json:"mimic_table_builds"`
	TableHits        uint64            `json:"mimic_table_hits"`
	DescVerified     uint64            `json:"descriptors_verified"`
	DescHits         uint64            `json:"descriptor_cache_hits"`
	FramesSent       uint64            `json:"net_frames_sent"`
	FramesDropped    uint64            `json:"net_frames_dropped"`
	DroppedBy        map[string]uint64 `json:"net_frames_dropped_by,omitempty"`
	PeersAdmitted    uint64            `json:"peers_admitted"`
	AdmissionsPerSec float64           `json:"admissions_per_s"`

	// When membership did not complete: where the run stood and what
	// full membership would take at the measured rates.
	ViewEntries        uint64  `json:"view_entries,omitempty"`              // sum of all views at the end
	HeapPerViewEntry   float64 `json:"heap_per_view_entry_bytes,omitempty"` // heap above baseline ÷ view entries
	ProjectedSeconds   float64 `json:"projected_membership_s,omitempty"`
	ProjectedHeapBytes float64 `json:"projected_heap_bytes,omitempty"`

	Sybil *SybilReport  `json:"sybil,omitempty"`
	Grind *GrindReport  `json:"grind,omitempty"`
	Churn []ChurnEpoch  `json:"churn,omitempty"`
	Curve []CurveSample `json:"convergence"`
	Notes []string      `json:"notes,omitempty"`
}

// HandshakeShare compares link handshakes that established a link with
// those a responder refused because the initiator was not its mimic.
type HandshakeShare struct {
	Established uint64  `json:"links_established"`
	NonMimic    uint64  `json:"drop_handshake_nonmimic"`
	Share       float64 `json:"verified_share"`
}

func shareOf(est, refused uint64) HandshakeShare {
	h := HandshakeShare{Established: est, NonMimic: refused}
	if est+refused > 0 {
		h.Share = float64(est) / float64(est+refused)
	}
	return h
}

// TunnelStats summarise tunnel builds.
type TunnelStats struct {
	Attempted int            `json:"attempted"`
	Built     int            `json:"built"`
	Success   float64        `json:"success_rate"`
	P50ms     float64        `json:"setup_p50_ms"`
	P90ms     float64        `json:"setup_p90_ms"`
	P99ms     float64        `json:"setup_p99_ms"`
	Errors    map[string]int `json:"errors,omitempty"`
}

func tunnelStats(setups []time.Duration, attempted int, errs map[string]int) TunnelStats {
	s := TunnelStats{Attempted: attempted, Built: len(setups), Errors: errs}
	if attempted > 0 {
		s.Success = float64(len(setups)) / float64(attempted)
	}
	slices.Sort(setups)
	q := func(p float64) float64 {
		if len(setups) == 0 {
			return 0
		}
		i := min(len(setups)-1, int(p*float64(len(setups))))
		return float64(setups[i].Microseconds()) / 1000
	}
	s.P50ms, s.P90ms, s.P99ms = q(0.50), q(0.90), q(0.99)
	return s
}

// CurveSample is one point of the convergence curve.
type CurveSample struct {
	T         float64 `json:"t_s"`
	MeanView  float64 `json:"mean_view_share"` // of the other live nodes
	FullShare float64 `json:"full_share"`      // nodes that know every other
	Round     float64 `json:"round"`           // median gossip round
	HeapBytes uint64  `json:"heap_bytes"`
}

// ChurnEpoch is what one epoch of churn did.
type ChurnEpoch struct {
	Epoch      int         `json:"epoch"`
	Left       int         `json:"left"`
	Joined     int         `json:"joined"`
	KnownShare float64     `json:"known_live_share"` // sampled nodes: live peers known at the epoch's end
	StaleShare float64     `json:"stale_share"`      // view entries of nodes that left
	Tunnels    TunnelStats `json:"tunnels"`
}

// SybilReport gives the share of paths with adversary hops.
type SybilReport struct {
	Methods []SybilShares `json:"methods"`
}

// SybilShares are the shares for one selection method.
type SybilShares struct {
	Method string  `json:"method"`
	How    string  `json:"how"`
	Paths  int     `json:"paths"`
	First  float64 `json:"first_hop"`
	Last   float64 `json:"last_hop"`
	All    float64 `json:"every_hop"`
	// FirstLast is the share of paths whose first and last hops are
	// both the adversary's (entry and exit: what end-to-end timing needs).
	FirstLast float64 `json:"first_and_last_hop"`
	Expect1   float64 `json:"expected_first_hop,omitempty"`
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v string, a ...any) { fmt.Fprintf(tw, "%s\t"+v+"\n", append([]any{k}, a...)...) }
	row("nodes", "%d honest over %d /16s (%d per /24)", r.Nodes, r.Domains, r.PerMid)
	if r.SybilNodes > 0 {
		row("sybil", "%d nodes in %d /16s", r.SybilNodes, r.SybilDomains)
	}
	row("setup", "k=%d hops=%d discovery=%s seed=%d shared caches=%v", r.K, r.Hops, r.Discovery, r.Seed, r.Shared)
	if r.SelectionOnly {
		r.writeSybil(row)
		tw.Flush()
		r.writeMethods(w)
		return
	}
	row("start all nodes", "%.1f s", r.StartSeconds)
	row("full membership", "%v after %.1f s, %.1f gossip rounds (mean view %.2f%%)", r.Converged, r.MembershipSeconds, r.MembershipRounds, 100*r.MeanViewShare)
	row("all mimic links up", "%v after %.1f s", r.LinksUp, r.LinksSeconds)
	row("gossip per node per round", "%.0f B of messages; %.2f frames = %.0f B on the wire", r.GossipBytesPerNodeRound, r.GossipFramesPerNodeRound, r.GossipWireBytesPerRound)
	row("mimic proposals verified", "%.2f%% of (A, B) mimic pairs where B's table also pairs B with A", 100*r.MimicAgreement)
	row("link handshakes accepted", "%.2f%% (%d links, %d refused non-mimic); once links were up %.2f%% (%d, %d)",
		100*r.Handshakes.Share, r.Handshakes.Established, r.Handshakes.NonMimic,
		100*r.HandshakesAfter.Share, r.HandshakesAfter.Established, r.HandshakesAfter.NonMimic)
	t := r.Tunnels
	row("tunnels", "%d/%d built (%.1f%%), setup p50 %.1f ms p90 %.1f ms p99 %.1f ms", t.Built, t.Attempted, 100*t.Success, t.P50ms, t.P90ms, t.P99ms)
	if len(t.Errors) > 0 {
		row("tunnel errors", "%v", t.Errors)
	}
	row("peak heap", "%s (%s per node), sys %s, %d goroutines", bytesStr(float64(r.PeakHeapBytes)), bytesStr(r.PeakHeapPerNode), bytesStr(float64(r.PeakSysBytes)), r.PeakGoroutines)
	row("admissions", "%d (%.0f/s)", r.PeersAdmitted, r.AdmissionsPerSec)
	row("shared work", "mimic tables built %d, shared %d; descriptors verified %d, shared %d", r.TableBuilds, r.TableHits, r.DescVerified, r.DescHits)
	row("network", "%d frames sent, %d dropped %v", r.FramesSent, r.FramesDropped, r.DroppedBy)
	row("wall time", "%.1f s", r.WallSeconds)
	r.writeSybil(row)
	for _, e := range r.Churn {
		row(fmt.Sprintf("churn epoch %d", e.Epoch), "-%d +%d nodes; live peers known %.1f%%, stale %.1f%%; tunnels %d/%d (%.1f%%) p50 %.1f ms",
			e.Left, e.Joined, 100*e.KnownShare, 100*e.StaleShare, e.Tunnels.Built, e.Tunnels.Attempted, 100*e.Tunnels.Success, e.Tunnels.P50ms)
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	tw.Flush()
	r.writeMethods(w)
}

func (r *Report) writeSybil(row func(string, string, ...any)) {
	if r.Sybil == nil {
		return
	}
	for _, m := range r.Sybil.Methods {
		exp := ""
		if m.Expect1 > 0 {
			exp = fmt.Sprintf(" (expected first %.4f)", m.Expect1)
		}
		row("sybil: "+m.Method, "first %.4f  last %.4f  first&last %.4f  every %.4f  over %d paths%s", m.First, m.Last, m.FirstLast, m.All, m.Paths, exp)
	}
	if g := r.Grind; g != nil {
		row("grinding", "adversary holds f = %.3f of the /16s; f² = %.4f; and one node in each of %d honest /16s", g.F, g.F*g.F, g.Insiders)
		for _, x := range g.Rows {
			row("grind: "+x.Strategy, "%s: entry %.4f  exit %.4f  entry&exit %.4f (%.2f f²)  over %d paths (%d failed); %d ID tries, %d nodes choose only colluders, %.3f of their choices are",
				x.Rule, x.Entry, x.Exit, x.EntryExit, x.Ratio, x.Paths, x.Failed, x.Tries, x.AllBad, x.BadChoices)
		}
	}
	if r.SelectionOnly {
		for _, n := range r.Notes {
			row("note", "%s", n)
		}
	}
}

func (r *Report) writeMethods(w io.Writer) {
	if r.Sybil != nil {
		fmt.Fprintln(w)
		for _, m := range r.Sybil.Methods {
			fmt.Fprintf(w, "  %s: %s\n", m.Method, m.How)
		}
	}
}

func bytesStr(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", b), ".0") + " " + units[i]
}
