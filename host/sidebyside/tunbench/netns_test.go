package tunbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/host/localnet"
)

// TestMain: the test binary also plays `tarzan node -c FILE` (localnet.RunTestsOrNode).
func TestMain(m *testing.M) { localnet.RunTestsOrNode(m) }

// TestRunInNamespaces runs a tiny comparison (one run, 1 s of iperf3,
// one UDP step, 5 pings) on real namespaces and TUN devices: Tarzan with
// 4 relays, and Yggdrasil beside it if installed; bounded to 120 s (it
// takes 8–50 s: the nodes are the race-built test binary under -race).
// Root only. It checks that every figure came out and that no namespace
// is left behind.
func TestRunInNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds namespaces and runs real nodes")
	}
	cfg := Config{Runs: 1, Seconds: 1, UDPSecs: 1, UDPRates: []float64{5}, Pings: 5, IdleSecs: 1, Nodes: 4, InProcess: true,
		Baseline: BaselineYggdrasil, No1280: true, Limit: 120 * time.Second}
	if _, err := exec.LookPath("yggdrasil"); err != nil {
		cfg.Baseline = BaselineNone
	}
	if err := Check(cfg); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary = exe
	cfg.WorkDir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress
	began := time.Now()
	tab, err := Run(context.Background(), cfg)
	t.Logf("took %.1f s; progress:\n%s", time.Since(began).Seconds(), progress.String())
	out, _ := exec.Command("ip", "netns", "list").Output()
	if mine := fmt.Sprintf("%s%d", NamePrefix, os.Getpid()); strings.Contains(string(out), mine) {
		t.Errorf("namespaces %s* left behind:\n%s", mine, out)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tab.Notes {
		if strings.HasPrefix(n, "run ") {
			t.Errorf("a run failed: %s", n)
		}
	}
	for _, m := range tab.Metrics {
		if len(m.TestSamples) != 1 || (m.Base != BaselineNone && len(m.BaseSamples) != 1) {
			t.Errorf("%s (%s): samples %v | %v, want one each", m.Name, m.Base, m.BaseSamples, m.TestSamples)
		}
	}
	if got := tab.Metrics[0].TestMedian(); !(got > 0) {
		t.Errorf("Tarzan's TCP throughput %v, want > 0", got)
	}
}
