package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlots draws, per network size and workload, anonymity against
// overhead and latency against overhead, one labelled point per policy.
func writePlots(dir string, res *Results) ([]string, error) {
	var paths []string
	for _, runs := range byTable(res.Runs) {
		k := struct {
			nodes    int
			workload string
		}{runs[0].Nodes, runs[0].Workload}
		base := fmt.Sprintf("%d-nodes-%s", k.nodes, sanitizeName(k.workload))
		p, err := scatter(runs, fmt.Sprintf("Anonymity against overhead (%d nodes, %s)", k.nodes, k.workload),
			"degree of anonymity under flow correlation (H / log2 N)", func(r Run) float64 { return r.Correlation.Degree })
		if err != nil {
			return paths, err
		}
		path := filepath.Join(dir, "anonymity-"+base+".png")
		if err := save(p, path); err != nil {
			return paths, err
		}
		paths = append(paths, path)

		p, err = scatter(runs, fmt.Sprintf("Latency against overhead (%d nodes, %s)", k.nodes, k.workload),
			"one-way latency p50 (ms)", func(r Run) float64 { return r.LatencyP50 })
		if err != nil {
			return paths, err
		}
		path = filepath.Join(dir, "latency-"+base+".png")
		if err := save(p, path); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func scatter(runs []Run, title, ylabel string, y func(Run) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "overhead (all frames ÷ data frames)"
	p.Y.Label.Text = ylabel
	// Overhead spans 1 (no cover) to 100 and more: a log axis keeps the
	// cheap policies apart instead of crushing them against 1.
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	for i, r := range runs {
		xy := plotter.XYs{{X: max(r.Overhead, 1), Y: y(r)}} // ≥ 1 by definition; log needs > 0
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(4)
		p.Add(s)
		p.Legend.Add(r.Policy, s)
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: []string{r.Policy}})
		if err != nil {
			return nil, err
		}
		labels.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
		p.Add(labels)
	}
	// A log axis needs a positive range of some width: with one policy,
	// or every policy at overhead 1, gonum would widen the range to
	// [0, 2] and the log ticks would fail. Half a step of padding on
	// each side keeps the outer points and their labels off the frame.
	lo, hi := math.Inf(1), 1.0
	for _, r := range runs {
		lo, hi = min(lo, max(r.Overhead, 1)), max(hi, r.Overhead)
	}
	if math.IsInf(lo, 1) {
		lo = 1
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(4)
	return p, nil
}

func save(p *plot.Plot, path string) error {
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func sanitizeName(s string) string {
	out := []rune{}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			out = append(out, r)
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}
