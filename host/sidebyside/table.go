// Package sidebyside measures Tarzan beside a baseline overlay (a private
// Tor network, Yggdrasil) in one run: the same workloads against each, runs
// interleaved A, B, A, B so that whatever else the machine does falls on
// both, and one table of medians and ratios at the end.
package sidebyside

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Metric is one figure measured on two overlays: Base (the baseline,
// e.g. "tor") and Test (normally "tarzan"), one sample per run.
type Metric struct {
	Name         string    `json:"name"`           // "100 MiB through SOCKS"
	Unit         string    `json:"unit"`           // "MB/s"
	HigherBetter bool      `json:"higher_better"`  // throughput yes, CPU-s and latency no
	Base         string    `json:"base"`           // the baseline overlay's name
	Test         string    `json:"test"`           // the measured overlay's name
	BaseSamples  []float64 `json:"base_samples"`   // one per run, in run order
	TestSamples  []float64 `json:"test_samples"`   // one per run, in run order
	Target       string    `json:"target"`         // what the issue asks, e.g. "≥ 5× Tor" ("" for none)
	Note         string    `json:"note,omitempty"` // e.g. "Tor has no TUN: Tarzan only"
}

// BaseMedian and TestMedian are the medians of the samples (NaN if none).
func (m Metric) BaseMedian() float64 { return Median(m.BaseSamples) }
func (m Metric) TestMedian() float64 { return Median(m.TestSamples) }

// Ratio is TestMedian ÷ BaseMedian (NaN when either is missing or the
// baseline is zero).
func (m Metric) Ratio() float64 {
	b, t := m.BaseMedian(), m.TestMedian()
	if math.IsNaN(b) || math.IsNaN(t) || b == 0 {
		return math.NaN()
	}
	return t / b
}

// Median of xs (NaN for none); xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Table is one comparison: what was run, how often, and the metrics.
type Table struct {
	Title   string   `json:"title"`   // "Tarzan (3 hops) beside Tor (3 hops), SOCKS"
	Runs    int      `json:"runs"`    // interleaved runs per overlay
	Command string   `json:"command"` // the command line that reproduces it
	Notes   []string `json:"notes,omitempty"`
	Metrics []Metric `json:"metrics"`
}

// WriteText prints the table as the tables are laid out: metric,
// both medians, the ratio, the target, then every sample.
func (t Table) WriteText(w io.Writer) error {
	if t.Title != "" {
		fmt.Fprintf(w, "%s (%d interleaved runs each, medians)\n", t.Title, t.Runs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tUNIT\tBASE\tTEST\tTEST÷BASE\tTARGET\tSAMPLES (base | test)")
	for _, m := range t.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s %s\t%s\t%s\t%s | %s\n", m.Name, m.Unit,
			m.Base, num(m.BaseMedian()), m.Test, num(m.TestMedian()), ratio(m.Ratio()),
			m.Target, nums(m.BaseSamples), nums(m.TestSamples))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, m := range t.Metrics {
		if m.Note != "" {
			fmt.Fprintf(w, "note (%s): %s\n", m.Name, m.Note)
		}
	}
	if t.Command != "" {
		fmt.Fprintf(w, "reproduce: %s\n", t.Command)
	}
	return nil
}

// WriteJSON prints the table as one indented JSON object, with medians
// and ratios filled in for readers that do not recompute them.
func (t Table) WriteJSON(w io.Writer) error {
	type out struct {
		Metric
		BaseMedian *float64 `json:"base_median"`
		TestMedian *float64 `json:"test_median"`
		Ratio      *float64 `json:"ratio"`
	}
	rows := make([]out, len(t.Metrics))
	for i, m := range t.Metrics {
		rows[i] = out{m, finite(m.BaseMedian()), finite(m.TestMedian()), finite(m.Ratio())}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Title   string   `json:"title"`
		Runs    int      `json:"runs"`
		Command string   `json:"command"`
		Notes   []string `json:"notes,omitempty"`
		Metrics []out    `json:"metrics"`
	}{t.Title, t.Runs, t.Command, t.Notes, rows})
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "—"
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

func ratio(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return fmt.Sprintf("%.2f", x)
}

func nums(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = num(x)
	}
	return strings.Join(s, " ")
}
