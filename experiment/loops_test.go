package experiment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/plugins/cover/poisson"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
)

// pluginArg makes a re-executed test binary serve poisson as an external
// cover plugin (TestExternalLooper).
const pluginArg = "tarzan-experiment-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == pluginArg {
		coverplugin.Serve(poisson.New)
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == crashArg {
		coverplugin.Serve(crashOnThird())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// loopsHead is a loaded network for poisson at 60 frames/s per link: the
// flows' 50 frames/s while on take most of their links' rate, so a loop
// cell in a slot is a slot data waits for.
const loopsHead = `seed = 3
[network]
nodes = [40]
initiators = 6
warmup = "2s"
duration = "10s"
[[workload]]
name = "onoff"
kind = "onoff"
rate = 50
on = "1s"
off = "1s"
`

// Poisson's loop_rate is swept like any option: with loop_rate > 0 every
// node sends loops, they come back, and on this loaded network the
// overhead does not fall (loop cells are cover) and the latency rises
// (they take slots data waited for); loop_rate 0 sends none and has no
// loop figures. The same file and seed give the same results.json.
func TestLoopRateSweep(t *testing.T) {
	f, err := Load(write(t, loopsHead+`[[policy]]
name = "poisson"
plugin = "poisson"
options = { rate = "60" }
sweep = { loop_rate = ["0", "10"] }
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sweep(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(res.Runs))
	}
	off, on := res.Runs[0], res.Runs[1]
	if off.Policy != "poisson loop_rate=0" || on.Policy != "poisson loop_rate=10" {
		t.Fatalf("runs %q, %q", off.Policy, on.Policy)
	}
	if off.Loops != nil {
		t.Errorf("loop_rate 0: loop figures %+v", *off.Loops)
	}
	lp := on.Loops
	if lp == nil {
		t.Fatal("loop_rate 10: no loop figures")
	}
	// 40 nodes × 10 loops/s × 10 s.
	if lp.Nodes != 40 || lp.Sent < 3600 || lp.Sent > 4400 {
		t.Errorf("%d nodes sent %d loops, want 40 sending about 4000", lp.Nodes, lp.Sent)
	}
	if lp.Returned < lp.Sent*9/10 || lp.Returned+lp.Lost > lp.Sent || lp.RTTP50 < 6*20 || lp.RTTP99 < lp.RTTP50 {
		t.Errorf("loops: %+v: want nearly all back, after at least six link latencies", *lp)
	}
	if lp.Frames < 5*lp.Returned {
		t.Errorf("%d loop frames for %d loops back: want about six each", lp.Frames, lp.Returned)
	}
	// Poisson's links send their rate whatever they carry: the frames on
	// the wire are the same, loop cells take padding's slots. The
	// workload's data frames are what they were or fewer (loops delay
	// some past the end), so the overhead does not fall; data waits
	// behind loop cells, so latency rises.
	if on.Frames != off.Frames {
		t.Errorf("frames %d with loops, %d without: poisson's links send their rate", on.Frames, off.Frames)
	}
	if on.DataFrames > off.DataFrames || on.Overhead < off.Overhead {
		t.Errorf("data frames %d → %d, overhead %.3f → %.3f: loop cells counted as data", off.DataFrames, on.DataFrames, off.Overhead, on.Overhead)
	}
	if on.LatencyP50 <= off.LatencyP50 || on.LatencyP99 <= off.LatencyP99 {
		t.Errorf("latency p50 %.0f → %.0f ms, p99 %.0f → %.0f ms: want both higher with loops on a loaded network", off.LatencyP50, on.LatencyP50, off.LatencyP99, on.LatencyP99)
	}
	if on.Flows != off.Flows || on.Flows != 6 {
		t.Errorf("%d and %d flows, want 6: loop tunnels are not flows", off.Flows, on.Flows)
	}
	t.Logf("loop_rate 0: overhead %.3f, p50/p99 %.0f/%.0f ms, top-1 %.2f; loop_rate 10: overhead %.3f, p50/p99 %.0f/%.0f ms, top-1 %.2f, loops %+v",
		off.Overhead, off.LatencyP50, off.LatencyP99, off.Correlation.Top1, on.Overhead, on.LatencyP50, on.LatencyP99, on.Correlation.Top1, *lp)

	// results.json: the loop figures only where loops were sent, and the
	// same bytes for the same file and seed.
	dir1, dir2 := t.TempDir(), t.TempDir()
	if _, err := Write(dir1, res); err != nil {
		t.Fatal(err)
	}
	res2, err := Sweep(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir2, res2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir1, "results.json"))
	b, _ := os.ReadFile(filepath.Join(dir2, "results.json"))
	if !bytes.Equal(a, b) {
		t.Error("same file and seed, different results.json")
	}
	var back struct {
		Runs []map[string]json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Runs[0]["loops"]; ok {
		t.Error("results.json has loops for loop_rate 0")
	}
	if !bytes.Contains(back.Runs[1]["loops"], []byte(`"returned"`)) || !bytes.Contains(back.Runs[1]["loops"], []byte(`"rtt_p50_ms"`)) {
		t.Errorf("results.json loops for loop_rate 10: %s", back.Runs[1]["loops"])
	}
	rep, _ := os.ReadFile(filepath.Join(dir1, "report.md"))
	row := fmt.Sprintf("| %d / %d | %.0f |", lp.Sent, lp.Returned, lp.RTTP50)
	if !strings.Contains(string(rep), "loops sent / returned | loop RTT p50 (ms) |") || !strings.Contains(string(rep), row) ||
		!strings.Contains(string(rep), "| poisson loop_rate=0 |") || !strings.Contains(string(rep), " – | – |") {
		t.Errorf("report.md lacks the loop columns (want %q in the loop_rate=10 row):\n%s", row, rep)
	}
}

// A table with no loops has no loop columns.
func TestReportNoLoopColumns(t *testing.T) {
	rep := string(report(&Results{Name: "x", Runs: []Run{{Policy: "none", Nodes: 20, Workload: "w"}}}, nil))
	if strings.Contains(rep, "loops sent") || strings.Contains(rep, "**loops**") {
		t.Errorf("report without loops mentions them:\n%s", rep)
	}
}

// An external plugin that asks for loops (its loop rate crosses in the
// ConfigureResponse) runs the same as the shipped policy in process:
// the same numbers, loops included.
func TestExternalLooper(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The experiment starts an external plugin by path with no
	// arguments: a script that runs this test binary as the plugin.
	// (The launcher clears the environment; without the GORACE setting
	// a race-enabled child sleeps a second when it exits.)
	script := filepath.Join(t.TempDir(), "poisson-plugin")
	body := fmt.Sprintf("#!/bin/sh\nGORACE=atexit_sleep_ms=0 exec '%s' %s\n", exe, pluginArg)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	const head = "seed = 2\n[network]\nnodes = [8]\ninitiators = 2\nwarmup = \"1s\"\nduration = \"3s\"\n[[workload]]\nname = \"w\"\nrate = 30\n"
	opts := "options = { rate = \"60\", loop_rate = \"5\" }\n"
	f, err := Load(write(t, head+"[[policy]]\nname = \"in\"\nplugin = \"poisson\"\n"+opts+
		fmt.Sprintf("[[policy]]\nname = \"out\"\npath = %q\nsha256 = %q\n", script, hex.EncodeToString(sum[:]))+opts))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sweep(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, out := res.Runs[0], res.Runs[1]
	if in.Loops == nil || out.Loops == nil || in.Loops.Returned == 0 {
		t.Fatalf("loops in process %+v, out of process %+v", in.Loops, out.Loops)
	}
	in.Policy, in.Plugin, out.Policy, out.Plugin = "", "", "", ""
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(out)
	if !bytes.Equal(a, b) {
		t.Errorf("the same policy in and out of process measured differently:\n in %s\nout %s", a, b)
	}
}
