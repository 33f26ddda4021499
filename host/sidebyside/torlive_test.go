package sidebyside

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host"
)

// TestMain lets the test binary play `tarzan node -c FILE` (every
// plugin in process), so the live test starts real node processes
// without building cmd/tarzan.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "node" && os.Args[2] == "-c" {
		os.Exit(runNode(os.Args[3]))
	}
	os.Exit(m.Run())
}

func runNode(path string) int {
	cfg, err := config.Load(path)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		var h *host.Host
		if h, err = host.Start(ctx, cfg, host.Options{}); err == nil {
			<-h.Done()
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "node:", err)
	return 1
}

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
		if m.Unit != "mcores" && (m.BaseSamples[0] <= 0 || m.TestSamples[0] <= 0) {
			t.Errorf("%s: samples %v | %v, want positive", m.Name, m.BaseSamples, m.TestSamples)
		}
	}
}
