// Package simplot draws a simulation report with gonum/plot: the
// convergence curves (mean view share, share of nodes with full
// membership, heap) and, for a Sybil run, the adversary's share of first,
// last and every hop under each selection method.
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

// Write draws r to a PNG file at path.
func Write(path string, r *sim.Report) error {
	plots := []*plot.Plot{}
	conv, err := convergence(r)
	if err != nil {
		return err
	}
	plots = append(plots, conv)
	if z := zoomedView(r); z != nil {
		plots = append(plots, z)
	}
	if r.Sybil != nil {
		s, err := sybil(r)
		if err != nil {
			return err
		}
		plots = append(plots, s)
	}
	const w, h = 8 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(plots)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
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

func convergence(r *sim.Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Membership: %d nodes, gossip from one bootstrap address", r.Nodes+r.SybilNodes)
	p.X.Label.Text = "seconds since every node started"
	p.Y.Label.Text = "share"
	p.Y.Min, p.Y.Max = 0, 1.05
	view, full, heap := make(plotter.XYs, len(r.Curve)), make(plotter.XYs, len(r.Curve)), make(plotter.XYs, len(r.Curve))
	var peak float64
	for _, s := range r.Curve {
		peak = max(peak, float64(s.HeapBytes))
	}
	for i, s := range r.Curve {
		view[i] = plotter.XY{X: s.T, Y: s.MeanView}
		full[i] = plotter.XY{X: s.T, Y: s.FullShare}
		heap[i] = plotter.XY{X: s.T, Y: float64(s.HeapBytes) / max(peak, 1)}
	}
	for i, l := range []struct {
		name string
		xy   plotter.XYs
	}{
		{"mean view (share of other nodes known)", view},
		{"nodes with full membership", full},
		{fmt.Sprintf("heap / peak (%.0f MiB)", peak/(1<<20)), heap},
	} {
		line, err := plotter.NewLine(l.xy)
		if err != nil {
			return nil, err
		}
		line.Color = colors[i]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	return p, nil
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

func sybil(r *sim.Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Sybil: %d adversary nodes in %d /16s beside %d honest in %d /16s", r.SybilNodes, r.SybilDomains, r.Nodes, r.Domains)
	p.Y.Label.Text = "share of paths"
	ms := r.Sybil.Methods
	var names []string
	w := vg.Points(10)
	for j, which := range []string{"first hop", "last hop", "every hop"} {
		vals := make(plotter.Values, len(ms))
		for i, m := range ms {
			v := [3]float64{m.First, m.Last, m.All}[j]
			vals[i] = v
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = colors[j]
		bars.Offset = vg.Length(j-1) * w
		p.Add(bars)
		p.Legend.Add(which, bars)
	}
	for _, m := range ms {
		names = append(names, shorten(m.Method))
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func shorten(s string) string {
	// Labels sit side by side under the bars: keep the first words.
	if r := []rune(s); len(r) > 18 {
		return string(r[:18]) + "…"
	}
	return s
}
