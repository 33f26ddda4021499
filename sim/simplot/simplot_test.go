package simplot

import (
	"image/png"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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
	if 2*stopped != 3*done {
		t.Fatalf("PNG heights: stopped run %d, converged run %d; want the stopped run's three panels 3/2 of two", stopped, done)
	}
}

// Every panel plots one quantity (heap apart from membership shares), and
// no key intersects any panel's data area.
func TestPanelsOneQuantityKeysOffData(t *testing.T) {
	r := &sim.Report{Nodes: 10, SybilNodes: 10, SybilDomains: 1, Domains: 5,
		Curve: []sim.CurveSample{{T: 0, MeanView: 0.001, HeapBytes: 1 << 20}, {T: 1, MeanView: 0.01, HeapBytes: 2 << 20}},
		Sybil: &sim.SybilReport{Methods: []sim.SybilShares{{Method: "a long method name", First: 0.5, Last: 0.4}, {Method: "b", First: 0.01}}}}
	mem, hp := membership(r), heap(r)
	if !strings.Contains(mem.p.Y.Label.Text, "share") || mem.key.Len() != 2 {
		t.Errorf("membership panel: y %q, %d key entries; want shares, 2", mem.p.Y.Label.Text, mem.key.Len())
	}
	if !strings.Contains(hp.p.Y.Label.Text, "MiB") || hp.key.Len() != 1 {
		t.Errorf("heap panel: y %q, %d key entries; want MiB, 1", hp.p.Y.Label.Text, hp.key.Len())
	}
	s, err := sybil(r)
	if err != nil {
		t.Fatal(err)
	}
	panels := []panel{mem, hp, {p: zoomedView(r)}, s}
	img := vgimg.New(9*vg.Inch, 16*vg.Inch)
	data, keys := layout(draw.New(img), panels)
	for i := range panels {
		d := data[i]
		if d.Size().X < 3*vg.Inch || d.Size().Y < vg.Inch {
			t.Errorf("panel %d: data area %v is too small", i, d)
		}
		for j, k := range keys {
			if k.Size().X == 0 {
				continue
			}
			if k.Min.X < d.Max.X && d.Min.X < k.Max.X && k.Min.Y < d.Max.Y && d.Min.Y < k.Max.Y {
				t.Errorf("key %d %v intersects panel %d's data area %v", j, k, i, d)
			}
		}
	}
	for _, i := range []int{0, 1, 3} {
		if keys[i].Size().X == 0 || keys[i].Min.X < data[i].Max.X {
			t.Errorf("panel %d: key %v is not right of its data %v", i, keys[i], data[i])
		}
	}
	if keys[2].Size().X != 0 {
		t.Errorf("the zoomed panel has a key: %v", keys[2])
	}
	// The stacked curves share the right edge of their data areas (the
	// bar chart pads its own).
	for i := 1; i < 3; i++ {
		if data[i].Max.X != data[0].Max.X {
			t.Errorf("panel %d's data ends at x=%v, panel 0's at %v", i, data[i].Max.X, data[0].Max.X)
		}
	}
}
