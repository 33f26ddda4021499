package simplot

import (
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
