// Package simplot draws a simulation report with gonum/plot: the
// convergence curves (mean view share and share of nodes with full
// membership on one panel, the heap in MiB on another: one quantity per
// axis) and, for a Sybil run, the adversary's share of first, last and
// every hop under each selection method. Every key sits to the right of
// its panel's axes, never over the data (DrawWithKey).
package simplot

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tarzan-net/tarzan/sim"
)

// panel is one plot of the figure and its key (nil: none).
type panel struct {
	p   *plot.Plot
	key *Key
}

// Write draws r to a PNG file at path: one panel per quantity (shares of
// membership, heap, and for a Sybil run the adversary's shares), stacked,
// each with its key to the right of its axes.
func Write(path string, r *sim.Report) error {
	panels := []panel{membership(r), heap(r)}
	if z := zoomedView(r); z != nil {
		panels = append(panels, panel{p: z})
	}
	if r.Sybil != nil {
		s, err := sybil(r)
		if err != nil {
			return err
		}
		panels = append(panels, s)
	}
	const w, h = 9 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(panels)))
	layout(draw.New(img), panels)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// layout stacks the panels in c, each key in one column right of every
// panel's axes, and returns each panel's data area and key rectangle.
func layout(c draw.Canvas, panels []panel) (data, keys []vg.Rectangle) {
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	var kw vg.Length
	for _, p := range panels {
		kw = max(kw, p.key.Width(c))
	}
	for i, p := range panels {
		d, k := DrawWithKeyWidth(tiles.At(c, 0, i), p.p, p.key, kw)
		data, keys = append(data, d), append(keys, k)
	}
	return data, keys
}

// membership is the share of other nodes the mean node knows and the
// share of nodes that know every other, over time: both shares, 0 to 1.
func membership(r *sim.Report) panel {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Membership: %d nodes, gossip from one bootstrap address", r.Nodes+r.SybilNodes)
	p.X.Label.Text = "seconds since every node started"
	p.Y.Label.Text = "share (0 to 1)"
	p.Y.Min, p.Y.Max = 0, 1.05
	view, full := make(plotter.XYs, len(r.Curve)), make(plotter.XYs, len(r.Curve))
	for i, s := range r.Curve {
		view[i] = plotter.XY{X: s.T, Y: s.MeanView}
		full[i] = plotter.XY{X: s.T, Y: s.FullShare}
	}
	key := NewKey()
	addLine(p, key, "mean view (share of other nodes known)", view, 0)
	addLine(p, key, "share of nodes with full membership", full, 1)
	p.Add(plotter.NewGrid())
	return panel{p: p, key: key}
}

// heap is the simulator's heap over time, in MiB: a quantity of its own,
// on an axis of its own.
func heap(r *sim.Report) panel {
	p := plot.New()
	p.Title.Text = "Simulator heap"
	p.X.Label.Text = "seconds since every node started"
	p.Y.Label.Text = "heap in use (MiB)"
	p.Y.Min = 0
	xy := make(plotter.XYs, len(r.Curve))
	for i, s := range r.Curve {
		xy[i] = plotter.XY{X: s.T, Y: float64(s.HeapBytes) / (1 << 20)}
	}
	key := NewKey()
	addLine(p, key, "heap", xy, 2)
	p.Add(plotter.NewGrid())
	return panel{p: p, key: key}
}

func addLine(p *plot.Plot, key *Key, name string, xy plotter.XYs, color int) {
	if len(xy) == 0 {
		return
	}
	line, err := plotter.NewLine(xy)
	if err != nil {
		return // NaN or Inf: nothing to draw
	}
	line.Color = colors[color]
	line.Width = vg.Points(1.5)
	p.Add(line)
	key.Add(name, line)
}

// zoomedView draws the mean view in percent on its own scale when a run
// stopped with views so small (10,000 nodes: about 1 %) that the shared
// 0–1 axis above shows a flat line; nil otherwise.
func zoomedView(r *sim.Report) *plot.Plot {
	var top float64
	for _, s := range r.Curve {
		top = max(top, s.MeanView)
	}
	if r.Converged || len(r.Curve) == 0 || top >= 0.25 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Mean view, zoomed: %.2f%% of other nodes known at the end", 100*r.Curve[len(r.Curve)-1].MeanView)
	p.X.Label.Text = "seconds since every node started"
	p.Y.Label.Text = "% of other nodes known"
	p.Y.Min, p.Y.Max = 0, 100*top*1.1
	xy := make(plotter.XYs, len(r.Curve))
	for i, s := range r.Curve {
		xy[i] = plotter.XY{X: s.T, Y: 100 * s.MeanView}
	}
	line, err := plotter.NewLine(xy)
	if err != nil {
		return nil
	}
	line.Color = colors[0]
	line.Width = vg.Points(1.5)
	p.Add(line, plotter.NewGrid())
	return p
}

func sybil(r *sim.Report) (panel, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Sybil: %d adversary nodes in %d /16s beside %d honest in %d /16s", r.SybilNodes, r.SybilDomains, r.Nodes, r.Domains)
	p.Y.Label.Text = "share of paths"
	ms := r.Sybil.Methods
	var names []string
	key := NewKey()
	w := vg.Points(10)
	for j, which := range []string{"first hop", "last hop", "every hop"} {
		vals := make(plotter.Values, len(ms))
		for i, m := range ms {
			v := [3]float64{m.First, m.Last, m.All}[j]
			vals[i] = v
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return panel{}, err
		}
		bars.Color = colors[j]
		bars.Offset = vg.Length(j-1) * w
		p.Add(bars)
		key.Add(which, bars)
	}
	for _, m := range ms {
		names = append(names, shorten(m.Method))
	}
	p.NominalX(names...)
	p.Y.Min = 0
	return panel{p: p, key: key}, nil
}

func shorten(s string) string {
	// Labels sit side by side under the bars: keep the first words.
	if r := []rune(s); len(r) > 18 {
		return string(r[:18]) + "…"
	}
	return s
}
