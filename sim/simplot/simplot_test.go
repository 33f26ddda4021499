package simplot

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/tarzan-net/tarzan/sim"
)

func TestWrite(t *testing.T) {
	r := &sim.Report{Nodes: 10, SybilNodes: 10, SybilDomains: 1, Domains: 5,
		Curve: []sim.CurveSample{{T: 0, MeanView: 0.1, HeapBytes: 1 << 20}, {T: 1, MeanView: 1, FullShare: 1, HeapBytes: 2 << 20}},
		Sybil: &sim.SybilReport{Methods: []sim.SybilShares{{Method: "a", First: 0.5, Last: 0.4, All: 0}, {Method: "b", First: 0.01}}}}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := Write(path, r); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("no PNG written: %v", err)
	}
}

// A run stopped with tiny views gets a zoomed mean-view panel of its own
// (the shared 0–1 axis would show a flat line); a converged run does not.
func TestWriteZoomsTinyViews(t *testing.T) {
	height := func(r *sim.Report) int {
		t.Helper()
		path := filepath.Join(t.TempDir(), "p.png")
		if err := Write(path, r); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg, err := png.DecodeConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Height
	}
	curve := []sim.CurveSample{{T: 0, MeanView: 0.001, HeapBytes: 1 << 20}, {T: 600, MeanView: 0.0144, HeapBytes: 2 << 20}}
	stopped := height(&sim.Report{Nodes: 10000, Curve: curve})
	done := height(&sim.Report{Nodes: 100, Converged: true, Curve: []sim.CurveSample{{T: 0, MeanView: 0.1}, {T: 4, MeanView: 1, FullShare: 1}}})
	if stopped != 2*done {
		t.Fatalf("PNG heights: stopped run %d, converged run %d; want the stopped run's two panels twice one", stopped, done)
	}
}
