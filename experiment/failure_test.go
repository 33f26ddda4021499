package experiment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/cover/poisson"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// crashArg makes a re-executed test binary a cover plugin whose third
// policy (in this process) panics: a plugin that starts, passes the
// check before the sweep, and dies in the middle of a run.
const crashArg = "tarzan-experiment-test-crash"

func crashOnThird() cover.Factory {
	var made atomic.Int32
	return func(o map[string]string) (cover.Policy, error) {
		if made.Add(1) == 3 {
			panic("boom at the third policy")
		}
		return poisson.New(o)
	}
}

// pluginScript writes an executable that runs this test binary with arg
// as a cover plugin, in dir, and returns its path and SHA-256.
func pluginScript(t *testing.T, dir, name, arg string) (string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// (The launcher clears the environment; without the GORACE setting
	// a race-enabled child sleeps a second when it exits.)
	body := fmt.Sprintf("#!/bin/sh\nGORACE=atexit_sleep_ms=0 exec '%s' %s\n", exe, arg)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	return path, hex.EncodeToString(sum[:])
}

const tinyHead = "seed = 2\n[network]\nnodes = [8]\ninitiators = 2\nwarmup = \"1s\"\nduration = \"2s\"\n[[workload]]\nname = \"w\"\nrate = 30\n"

// A relative plugin path resolves against the sweep file's directory,
// as node.toml's do, whatever the working directory; the policy keeps
// the name as written.
func TestRelativePluginPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, sum := pluginScript(t, filepath.Join(dir, "bin"), "poisson-plugin", pluginArg)
	sweep := filepath.Join(dir, "sweep.toml")
	body := tinyHead + fmt.Sprintf("[[policy]]\npath = \"bin/poisson-plugin\"\nsha256 = %q\noptions = { rate = \"40\" }\n", sum)
	if err := os.WriteFile(sweep, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // elsewhere: the path must not depend on it
	f, err := Load(sweep)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "bin", "poisson-plugin"); f.Policy[0].Path != want || f.Policy[0].Name != "bin/poisson-plugin" {
		t.Fatalf("path %q name %q; want path %q, name as written", f.Policy[0].Path, f.Policy[0].Name, want)
	}
	res, err := Sweep(f, Options{})
	if err != nil || len(res.Runs) != 1 {
		t.Fatalf("sweep: %v, %d runs", err, len(res.Runs))
	}
}

// A run that fails in the middle of a sweep is printed at once (before
// the next run's line), the sweep goes on, and the failure is in
// results.json and report.md with why and the plugin's last log lines.
func TestFailedRunReported(t *testing.T) {
	dir := t.TempDir()
	crash, crashSum := pluginScript(t, dir, "crash-plugin", crashArg)
	// Runs 1 and 2: 6 nodes in 3 /16s cannot hold a 3-hop path (it
	// needs 4).
	// Run 2: the crashing plugin (its check before the sweep makes one
	// policy; the run's child dies at its third). Run 4 completes.
	body := "seed = 2\n[network]\nnodes = [6, 8]\ninitiators = 2\nwarmup = \"1s\"\nduration = \"2s\"\n[[workload]]\nname = \"w\"\nrate = 30\n" +
		fmt.Sprintf("[[policy]]\nname = \"crashy\"\npath = %q\nsha256 = %q\n", crash, crashSum) +
		"[[policy]]\nname = \"constant\"\nplugin = \"constant\"\n"
	f, err := Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := Sweep(f, Options{Progress: &progress})
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Failed != 3 || fe.Runs != 4 {
		t.Fatalf("Sweep error %v; want 3 of 4 runs failed", err)
	}
	if len(res.Runs) != 1 || res.Runs[0].Policy != "constant" || res.Runs[0].Nodes != 8 {
		t.Fatalf("completed runs %+v; want constant at 8 nodes", res.Runs)
	}
	if len(res.Failed) != 3 {
		t.Fatalf("failed %+v", res.Failed)
	}
	small, crashed := res.Failed[0], res.Failed[2]
	if small.Run != 1 || small.Of != 4 || small.Nodes != 6 || !strings.Contains(small.Error, "3 domains for 6 nodes") {
		t.Errorf("first failure %+v; want run 1/4 at 6 nodes, too few domains", small)
	}
	if crashed.Run != 3 || crashed.Policy != "crashy" || crashed.Plugin != crash || crashed.Nodes != 8 {
		t.Errorf("third failure %+v; want run 3/4, crashy at 8 nodes", crashed)
	}
	if !strings.Contains(strings.Join(crashed.LogTail, "\n"), "panic: boom at the third policy") {
		t.Errorf("the crash's log tail lacks the plugin's last words: %q", crashed.LogTail)
	}
	// At once: each failure's line comes before the next run's.
	out := progress.String()
	i3, i4 := strings.Index(out, "experiment 3/4  crashy"), strings.Index(out, "experiment 4/4  constant")
	if i3 < 0 || i4 < i3 || !strings.Contains(out[i3:i4], "FAILED") || !strings.Contains(out[i3:i4], "boom") {
		t.Errorf("progress does not show run 3's failure and log tail before run 4:\n%s", out)
	}

	out2 := t.TempDir()
	if _, err := Write(out2, res); err != nil {
		t.Fatal(err)
	}
	js, _ := os.ReadFile(filepath.Join(out2, "results.json"))
	var back Results
	if err := json.Unmarshal(js, &back); err != nil || len(back.Failed) != 3 || back.Failed[2].Error != crashed.Error {
		t.Errorf("results.json failed = %+v (%v)", back.Failed, err)
	}
	rep, _ := os.ReadFile(filepath.Join(out2, "report.md"))
	for _, want := range []string{"## Failed runs", "3 of 4 runs failed", "run 1/4: crashy, workload w, 6 nodes", "run 3/4: crashy, workload w, 8 nodes", "panic: boom at the third policy"} {
		if !bytes.Contains(rep, []byte(want)) {
			t.Errorf("report.md lacks %q:\n%s", want, rep)
		}
	}
}

// A policy that cannot start fails the sweep before its first run, with
// the reason.
func TestBadPolicyFailsBeforeFirstRun(t *testing.T) {
	dir := t.TempDir()
	_, sum := pluginScript(t, dir, "poisson-plugin", pluginArg)
	for name, pol := range map[string]string{
		"bad option":   fmt.Sprintf("path = %q\nsha256 = %q\noptions = { rate = \"fast\" }\n", filepath.Join(dir, "poisson-plugin"), sum),
		"bad checksum": fmt.Sprintf("path = %q\nsha256 = %q\n", filepath.Join(dir, "poisson-plugin"), strings.Repeat("0", 64)),
		"missing":      fmt.Sprintf("path = %q\nsha256 = %q\n", filepath.Join(dir, "nothing-here"), sum),
	} {
		f, err := Load(write(t, tinyHead+"[[policy]]\nname = \"c\"\nplugin = \"constant\"\n[[policy]]\nname = \"x\"\n"+pol))
		if err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		res, err := Sweep(f, Options{Progress: &progress})
		if err == nil || len(res.Runs) != 0 || progress.Len() != 0 {
			t.Errorf("%s: Sweep = %v after %d runs (%q); want an error before the first", name, err, len(res.Runs), progress.String())
		}
	}
}

// Failed ticks are counted, not hidden: in the run and in report.md.
func TestTickErrorsCounted(t *testing.T) {
	var n uint64
	tick := countErrors(nil, &n)
	ok, _ := poisson.New(map[string]string{"rate": "10"})
	ps := []cover.Policy{ok, failing{ok}, failing{ok}}
	targets, errs := tick(time.Unix(0, 0), ps, make([][]cover.LinkStats, 3))
	if n != 2 || errs == nil || errs[0] != nil || errs[1] == nil || targets[0] == nil {
		t.Fatalf("counted %d, errs %v", n, errs)
	}
	rep := string(report(&Results{Runs: []Run{{Policy: "p", Workload: "w", Nodes: 8, Seed: 1, TickErrors: 2}}}, nil))
	if !strings.Contains(rep, "p / w / 8 nodes / seed 1: 2 policy ticks failed") {
		t.Errorf("report.md does not mention the failed ticks:\n%s", rep)
	}
}

type failing struct{ cover.Policy }

func (failing) Tick(time.Time, []cover.LinkStats) ([]cover.Target, error) {
	return nil, errors.New("plugin restarting")
}
