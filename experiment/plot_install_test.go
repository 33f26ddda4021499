package experiment

import (
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tarzan-net/tarzan/sim/adversary"
)

// The overhead axis is logarithmic (issue 13): 1 to 100 on a linear axis
// crushes every cheap policy against 1.
func TestScatterOverheadAxisIsLog(t *testing.T) {
	runs := []Run{{Policy: "none", Overhead: 1}, {Policy: "constant", Overhead: 100}, {Policy: "odd", Overhead: 0}}
	p, err := scatter(runs, "t", "y", func(r Run) float64 { return r.Overhead })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.p.X.Scale.(plot.LogScale); !ok {
		t.Fatalf("overhead axis scale is %T, want plot.LogScale", p.p.X.Scale)
	}
	if _, ok := p.p.X.Tick.Marker.(plot.LogTicks); !ok {
		t.Fatalf("overhead ticks are %T, want plot.LogTicks", p.p.X.Tick.Marker)
	}
	if err := save(p, t.TempDir()+"/x.png"); err != nil {
		t.Fatalf("a run with overhead 0 breaks the log axis: %v", err)
	}
}

// One policy, or every policy at overhead 1, leaves the axis no width;
// gonum would widen it to [0, 2], which a log axis cannot draw.
func TestScatterOnePolicyDraws(t *testing.T) {
	for _, runs := range [][]Run{{{Policy: "none", Overhead: 1}}, {{Policy: "a", Overhead: 1}, {Policy: "b", Overhead: 1}}} {
		p, err := scatter(runs, "t", "y", func(r Run) float64 { return 0.5 })
		if err != nil {
			t.Fatal(err)
		}
		if err := save(p, t.TempDir()+"/x.png"); err != nil {
			t.Fatalf("%d runs at overhead 1: %v", len(runs), err)
		}
	}
}

// Several seeds of one policy make one point (their median) with a
// range, named with its seed count in a key that intersects no part of
// the data area; a long policy name moves the key below the axes
// rather than squeezing the data.
func TestScatterSeedsAggregatedKeyOffData(t *testing.T) {
	var runs []Run
	for seed, o := range []float64{2, 3, 2.5} {
		runs = append(runs,
			Run{Policy: "constant rate=60 interval=100ms with a long name", Seed: uint64(seed + 1), Overhead: 10 * o, Correlation: adversaryDegree(0.9 + 0.01*o)},
			Run{Policy: "none", Seed: uint64(seed + 1), Overhead: 1, Correlation: adversaryDegree(0.1 * o)})
	}
	pts := byPoint(runs)
	if len(pts) != 2 || len(pts[0].Runs) != 3 || len(pts[1].Runs) != 3 {
		t.Fatalf("points %+v: want 2 of 3 seeds", pts)
	}
	if s := pts[0].spread(func(r Run) float64 { return r.Overhead }); s != (spread{Med: 25, Lo: 20, Hi: 30}) {
		t.Errorf("overhead spread %+v, want median 25 in 20–30", s)
	}
	f, err := scatter(runs, "t", "degree", func(r Run) float64 { return r.Correlation.Degree })
	if err != nil {
		t.Fatal(err)
	}
	names := f.key.Names()
	if len(names) != 2 || names[0] != "constant rate=60 interval=100ms with a long name (3 seeds)" || names[1] != "none (3 seeds)" {
		t.Errorf("key %q: want one entry per policy with its seed count", names)
	}
	img := vgimg.New(plotW, plotH)
	data, key := f.draw(draw.New(img))
	if key.Size().X == 0 || (key.Min.X < data.Max.X && key.Max.Y > data.Min.Y) {
		t.Errorf("key %v is neither right of nor below the data area %v", key, data)
	}
	if key.Min.X < data.Max.X && data.Min.X < key.Max.X && key.Min.Y < data.Max.Y && data.Min.Y < key.Max.Y {
		t.Errorf("key %v intersects the data area %v", key, data)
	}
	if data.Size().X < plotW/2 {
		t.Errorf("data area %v: the key took more than half the width", data)
	}
	if err := save(f, t.TempDir()+"/x.png"); err != nil {
		t.Fatal(err)
	}
	// Short names: the key is a column right of the axes.
	for i := range runs {
		runs[i].Policy = runs[i].Policy[:4]
	}
	f, err = scatter(runs, "t", "degree", func(r Run) float64 { return r.Correlation.Degree })
	if err != nil {
		t.Fatal(err)
	}
	data, key = f.draw(draw.New(vgimg.New(plotW, plotH)))
	if key.Min.X < data.Max.X || key.Max.Y > data.Max.Y || key.Size().X == 0 {
		t.Errorf("short names: key %v is not right of the data area %v, top-aligned", key, data)
	}
}

func adversaryDegree(d float64) adversary.Summary { return adversary.Summary{Degree: d} }
