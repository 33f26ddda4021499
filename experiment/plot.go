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
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tarzan-net/tarzan/sim/simplot"
)

// writePlots draws, per network size and workload, anonymity against
// overhead and latency against overhead: one point per policy variant
// (the median over its seeds, with their range as bars), the key right
// of the axes.
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

// figure is one plot and its key, drawn beside the data.
type figure struct {
	p   *plot.Plot
	key *simplot.Key
}

// withSpread is a policy's median point with its range over the seeds,
// as gonum's error bars want it (distances below and above).
type withSpread struct {
	plotter.XYs
	plotter.XErrors
	plotter.YErrors
}

// scatter draws one point per policy variant: the median over its seeds,
// with bars from the smallest to the largest value in x and y when it
// ran with several. Policies are told apart by colour and shape, named
// in a key right of the axes.
func scatter(runs []Run, title, ylabel string, y func(Run) float64) (*figure, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "overhead (all frames ÷ data frames, log scale)"
	p.Y.Label.Text = ylabel
	// Overhead spans 1 (no cover) to 100 and more: a log axis keeps the
	// cheap policies apart instead of crushing them against 1.
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	key := simplot.NewKey()
	overhead := func(r Run) float64 { return max(r.Overhead, 1) } // ≥ 1 by definition; log needs > 0
	lo, hi := math.Inf(1), 1.0
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for i, pt := range byPoint(runs) {
		sx, sy := pt.spread(overhead), pt.spread(y)
		lo, hi = min(lo, sx.Lo), max(hi, sx.Hi)
		ylo, yhi = min(ylo, sy.Lo), max(yhi, sy.Hi)
		d := withSpread{
			XYs:     plotter.XYs{{X: sx.Med, Y: sy.Med}},
			XErrors: plotter.XErrors{{Low: sx.Med - sx.Lo, High: sx.Hi - sx.Med}},
			YErrors: plotter.YErrors{{Low: sy.Med - sy.Lo, High: sy.Hi - sy.Med}},
		}
		s, err := plotter.NewScatter(d)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(4)
		p.Add(s)
		name := pt.Label
		if len(pt.Runs) > 1 {
			xb, err := plotter.NewXErrorBars(d)
			if err != nil {
				return nil, err
			}
			yb, err := plotter.NewYErrorBars(d)
			if err != nil {
				return nil, err
			}
			xb.Color, yb.Color = plotutil.Color(i), plotutil.Color(i)
			p.Add(xb, yb)
			name = fmt.Sprintf("%s (%d seeds)", pt.Label, len(pt.Runs))
		}
		key.Add(name, s)
	}
	// A log axis needs a positive range of some width: with one policy,
	// or every policy at overhead 1, gonum would widen the range to
	// [0, 2] and the log ticks would fail. Half a step of padding on
	// each side keeps the outer points and their bars off the frame.
	if math.IsInf(lo, 1) {
		lo = 1
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	// And 5 % of the range above and below, so that no point or bar
	// sits on the frame.
	if !math.IsInf(ylo, 0) && !math.IsNaN(ylo) && !math.IsNaN(yhi) {
		pad := max(yhi-ylo, math.Abs(yhi), 1e-9) * 0.05
		p.Y.Min, p.Y.Max = ylo-pad, yhi+pad
	}
	return &figure{p: p, key: key}, nil
}

// plotW and plotH are a plot's size, its key included.
const plotW, plotH = 9 * vg.Inch, 5 * vg.Inch

// draw lays the figure out in c: the plot, and its key to the right of
// the axes. It returns the data area and the key's rectangle.
func (f *figure) draw(c draw.Canvas) (data, key vg.Rectangle) {
	return simplot.DrawWithKey(draw.Crop(c, vg.Millimeter*2, -vg.Millimeter*2, vg.Millimeter*2, -vg.Millimeter*2), f.p, f.key)
}

func save(f *figure, path string) (err error) {
	defer func() {
		// gonum panics on some degenerate axes; a plot is not worth a
		// crashed sweep.
		if r := recover(); r != nil {
			err = fmt.Errorf("drawing %s: %v", filepath.Base(path), r)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	img := vgimg.New(plotW, plotH)
	dc := draw.New(img)
	f.draw(dc)
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
