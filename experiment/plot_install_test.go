package experiment

import (
	"testing"

	"gonum.org/v1/plot"
)

// The overhead axis is logarithmic (issue 13): 1 to 100 on a linear axis
// crushes every cheap policy against 1.
func TestScatterOverheadAxisIsLog(t *testing.T) {
	runs := []Run{{Policy: "none", Overhead: 1}, {Policy: "constant", Overhead: 100}, {Policy: "odd", Overhead: 0}}
	p, err := scatter(runs, "t", "y", func(r Run) float64 { return r.Overhead })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.X.Scale.(plot.LogScale); !ok {
		t.Fatalf("overhead axis scale is %T, want plot.LogScale", p.X.Scale)
	}
	if _, ok := p.X.Tick.Marker.(plot.LogTicks); !ok {
		t.Fatalf("overhead ticks are %T, want plot.LogTicks", p.X.Tick.Marker)
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
