package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write saves results.json, report.md and the plots in dir (created if
// needed) and returns the paths written.
func Write(dir string, res *Results) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sanitize(res)
	var paths []string
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "results.json")
	if err := os.WriteFile(p, append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	paths = append(paths, p)
	plots, err := writePlots(dir, res)
	if err != nil {
		return paths, fmt.Errorf("plots: %w", err)
	}
	paths = append(paths, plots...)
	p = filepath.Join(dir, "report.md")
	if err := os.WriteFile(p, report(res, plots), 0o644); err != nil {
		return paths, err
	}
	return append(paths, p), nil
}

// sanitize replaces values JSON cannot hold (NaN, ±Inf: an overhead with
// no data frames) by 0, with a note.
func sanitize(res *Results) {
	for i := range res.Runs {
		r := &res.Runs[i]
		for _, f := range []*float64{&r.Overhead, &r.Correlation.Entropy, &r.Correlation.Degree, &r.Originator.Entropy, &r.Originator.Degree} {
			if math.IsNaN(*f) || math.IsInf(*f, 0) {
				*f = 0
				res.Notes = appendOnce(res.Notes, fmt.Sprintf("%s / %s / %d nodes: a value was undefined (no data frames?) and is written as 0", r.Policy, r.Workload, r.Nodes))
			}
		}
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// report is report.md: one table per network size and workload, then how
// to read it.
func report(res *Results, plots []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", res.Name)
	fmt.Fprintf(&b, "Mode: %s. Seed %d. Adversary bins %v, correlation window %v, lag search up to %v.\n\n",
		res.Mode, res.Seed, res.Attack.Bin.Duration, orDefault(res.Attack.Window.String(), "100ms"), orDefault(res.Attack.MaxLag.String(), "500ms"))
	if len(res.Failed) > 0 {
		fmt.Fprintf(&b, "## Failed runs\n\n%d of %d runs failed; their points are missing from the tables and plots below.\n\n",
			len(res.Failed), len(res.Failed)+len(res.Runs))
		for _, f := range res.Failed {
			fmt.Fprintf(&b, "- run %d/%d: %s, workload %s, %d nodes (plugin %s): %s\n", f.Run, f.Of, f.Policy, f.Workload, f.Nodes, f.Plugin, oneLine(f.Error))
			if len(f.LogTail) > 0 {
				b.WriteString("\n  Last log lines:\n\n  ```\n")
				for _, l := range f.LogTail {
					fmt.Fprintf(&b, "  %s\n", oneLine(l))
				}
				b.WriteString("  ```\n")
			}
		}
		b.WriteString("\n")
	}
	anyLoops := false
	if res.Seeds > 1 {
		fmt.Fprintf(&b, "Every point ran with %d seeds (%d to %d): each cell is the median, with the range [min–max] over the seeds.\n\n",
			res.Seeds, res.Seed, res.Seed+uint64(res.Seeds)-1)
	}
	for _, runs := range byTable(res.Runs) {
		fmt.Fprintf(&b, "## %d nodes, workload %s (%d flows)\n\n", runs[0].Nodes, runs[0].Workload, runs[0].Flows)
		loops := slices.ContainsFunc(runs, func(r Run) bool { return r.Loops != nil })
		anyLoops = anyLoops || loops
		b.WriteString("| policy | corr. top-1 | corr. top-10 | corr. rank | corr. H (bits) | 2^H | degree | orig. top-1 | orig. H | overhead | utilisation (%) | latency p50 (ms) | latency p99 (ms) | goodput (kB/s) |")
		if loops {
			b.WriteString(" loops sent / returned | loop RTT p50 (ms) |")
		}
		b.WriteString("\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		if loops {
			b.WriteString(" --- | --- |")
		}
		b.WriteString("\n")
		for _, pt := range byPoint(runs) {
			n := len(pt.Runs)
			c := func(verb string, f func(Run) float64) string { return pt.spread(f).cell(verb, n) }
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", pt.Label,
				c("%.2f", func(r Run) float64 { return r.Correlation.Top1 }),
				c("%.2f", func(r Run) float64 { return r.Correlation.Top10 }),
				c("%.1f", func(r Run) float64 { return r.Correlation.MeanRank }),
				c("%.2f", func(r Run) float64 { return r.Correlation.Entropy }),
				c("%.1f", func(r Run) float64 { return r.Correlation.EffectiveSize }),
				c("%.2f", func(r Run) float64 { return r.Correlation.Degree }),
				c("%.2f", func(r Run) float64 { return r.Originator.Top1 }),
				c("%.2f", func(r Run) float64 { return r.Originator.Entropy }),
				c("%.2f", func(r Run) float64 { return r.Overhead }),
				c("%.1f", func(r Run) float64 { return 100 * r.Utilisation }),
				c("%.0f", func(r Run) float64 { return r.LatencyP50 }),
				c("%.0f", func(r Run) float64 { return r.LatencyP99 }),
				c("%.0f", func(r Run) float64 { return r.Goodput / 1000 }))
			switch {
			case !loops:
			case pt.Runs[0].Loops == nil:
				b.WriteString(" – | – |")
			default:
				lp := func(f func(*Loops) float64) func(Run) float64 {
					return func(r Run) float64 {
						if r.Loops == nil {
							return 0
						}
						return f(r.Loops)
					}
				}
				fmt.Fprintf(&b, " %s / %s | %s |", c("%.0f", lp(func(l *Loops) float64 { return float64(l.Sent) })),
					c("%.0f", lp(func(l *Loops) float64 { return float64(l.Returned) })), c("%.0f", lp(func(l *Loops) float64 { return l.RTTP50 })))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if len(plots) > 0 {
		b.WriteString("## Plots\n\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(filepath.Base(p), ".png"), filepath.Base(p))
		}
	}
	for _, r := range res.Runs {
		if r.TickErrors > 0 {
			fmt.Fprintf(&b, "Note: %s / %s / %d nodes / seed %d: %d policy ticks failed (a plugin restarting?); those nodes' links went unshaped until their next tick.\n\n",
				r.Policy, r.Workload, r.Nodes, r.Seed, r.TickErrors)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "Note: %s\n\n", n)
	}
	b.WriteString(readingGuide)
	if anyLoops {
		b.WriteString(loopsGuide)
	}
	b.WriteString(readingEnd)
	return b.Bytes()
}

// byTable groups runs by network size and workload, in the order they
// first appear: one table of report.md, one pair of plots each.
func byTable(runs []Run) [][]Run {
	type key struct {
		nodes    int
		workload string
	}
	var out [][]Run
	at := map[key]int{}
	for _, r := range runs {
		k := key{r.Nodes, r.Workload}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// oneLine keeps a message on one line of markdown.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ⏎ ")
}

func orDefault(s, def string) string {
	if s == "0s" || s == "" {
		return def
	}
	return s
}

const readingGuide = `## How to read this

- **corr.** is the flow-correlation attack: for every flow, the adversary
  correlates what the exit sent to and received from the server with each
  node's frames on its links and ranks the nodes. **top-1** is the share
  of flows whose true initiator it ranks first (chance is 1/(nodes−1)),
  **top-10** within the first ten, **rank** the true initiator's mean rank.
- **H** is the entropy of the adversary's distribution over initiators,
  **2^H** the effective anonymity-set size (Serjantov & Danezis 2002),
  **degree** H / log2 N (Díaz et al. 2002): 1 is perfect, 0 is none.
- **orig.** is originator detection: which nodes send more than they
  receive, and when.
- **overhead** is all frames on all links divided by frames carrying
  the workload's data (its acknowledgements included), over the time
  flows ran: padding and loop cells are cover; **utilisation** the
  workload's data frames on links that carried them, as a share of
  their capacity.
- **latency** is one-way, from the moment a packet enters its tunnel to
  its arrival at the other end; **goodput** the payload delivered per
  second, both directions.
`

const loopsGuide = `- **loops** (policies that ask for loop cover, e.g. poisson's
  loop_rate): loops the nodes sent during the flow period through their
  loop tunnels to the last hop and back, and how many came back within
  the 5 s loop timeout (the rest were lost, or still out when the run
  ended); **loop RTT** the median round trip of those that came back.
`

const readingEnd = `
A policy buys anonymity when top-1 falls toward chance and H rises toward
log2 N; what it costs is in the overhead and latency columns. See
docs/EXPERIMENTS.md.
`
