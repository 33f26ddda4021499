package sidebyside

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/host/localnet"
)

// TestMain: the test binary also plays `tarzan node -c FILE` (localnet.RunTestsOrNode).
func TestMain(m *testing.M) { localnet.RunTestsOrNode(m) }

// TestCompareLive starts a small private Tor network and a small Tarzan
// network and runs every workload once at KiB sizes: the harness works
// end to end (not how fast anything is).
func TestCompareLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Tor and a Tarzan network (about a minute)")
	}
	if _, _, err := LookTor(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not on PATH")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := CompareConfig{Exe: self, Dir: t.TempDir(), Baseline: "tor", Nodes: 5, InProcess: true,
		Tor:  TorPlan{Authorities: 3, Exits: 2, VotingInterval: 10},
		Runs: 1, Size: 256 << 10, Flows: 3, FlowSize: 64 << 10, TTFBs: 3, Setups: 2, Idle: time.Second,
		Progress: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	tab, err := Compare(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took %v", time.Since(start))
	if len(tab.Metrics) != 10 {
		t.Fatalf("%d metrics, want 10", len(tab.Metrics))
	}
	for _, m := range tab.Metrics {
		if len(m.BaseSamples) != 1 || len(m.TestSamples) != 1 {
			t.Errorf("%s: samples %v | %v, want one each", m.Name, m.BaseSamples, m.TestSamples)
			continue
		}
		// CPU is read in clock ticks (10 ms): a 256 KiB transfer may take
		// less than one in every tor process, so 0 is a valid sample there.
		if m.Unit == "CPU-s" && (m.BaseSamples[0] < 0 || m.TestSamples[0] < 0) {
			t.Errorf("%s: samples %v | %v, want ≥ 0", m.Name, m.BaseSamples, m.TestSamples)
		}
		if m.Unit != "mcores" && m.Unit != "CPU-s" && (m.BaseSamples[0] <= 0 || m.TestSamples[0] <= 0) {
			t.Errorf("%s: samples %v | %v, want positive", m.Name, m.BaseSamples, m.TestSamples)
		}
	}
}
