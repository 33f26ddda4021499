package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/experiment"
)

// TestExperimentExternalPolicy sweeps an external cover policy (one
// child process serving every simulated node, pinned by SHA-256, named
// by a path relative to the sweep file and run from another directory)
// beside a shipped one through the real `tarzan experiment` command, and
// checks what it wrote: every run, the external policy's padding in the
// overhead, and report.md naming both.
func TestExperimentExternalPolicy(t *testing.T) {
	path, sum := burstPlugin.build(t)
	dir := t.TempDir()
	sweep := filepath.Join(dir, "sweep.toml")
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`name = "ext"
[network]
nodes = [20]
initiators = 3
warmup = "1s"
duration = "8s"
[[policy]]
name = "none"
plugin = "none"
[[policy]]
name = "burst"
path = %q
sha256 = %q
sweep = { rate = ["20", "40"] }
`, rel, sum)
	if err := os.WriteFile(sweep, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(tarzanBin, "experiment", "-c", sweep, "-o", out)
	cmd.Dir = t.TempDir() // the plugin's path is relative to the file, not to this
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tarzan experiment: %v\n%s", err, b)
	}
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res experiment.Results
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 3 {
		t.Fatalf("%d runs, want 3:\n%s", len(res.Runs), b)
	}
	none, b20, b40 := res.Runs[0], res.Runs[1], res.Runs[2]
	if b20.Plugin != path || b20.Options["rate"] != "20" || b40.Options["rate"] != "40" {
		t.Errorf("external runs: %+v / %+v", b20, b40)
	}
	// Padding shows in the frames sent, which grow with the policy's rate.
	// Not in the overhead ratio: its divisor is the workload's data frames
	// sent in the window, and a rate that throttles the workload sends fewer
	// of them (seen with v1's and v2's topologies alike), so the ratio need
	// not grow with the rate.
	if none.Overhead != 1 || b20.Overhead <= 1 || b20.Frames <= none.Frames || b40.Frames <= b20.Frames {
		t.Errorf("frames none %d, burst rate=20 %d, rate=40 %d (overheads %.2f, %.2f, %.2f): the external policy's padding is missing",
			none.Frames, b20.Frames, b40.Frames, none.Overhead, b20.Overhead, b40.Overhead)
	}
	rep, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(rep), "| burst rate=40 |") {
		t.Errorf("report.md: %v\n%s", err, rep)
	}

	// A wrong checksum is refused with a clear error.
	bad := strings.Replace(body, sum, strings.Repeat("0", 64), 1)
	if err := os.WriteFile(sweep, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err = exec.Command(tarzanBin, "experiment", "-c", sweep, "-o", filepath.Join(dir, "bad")).CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(b)), "sha-256") && !strings.Contains(strings.ToLower(string(b)), "checksum") {
		t.Errorf("wrong checksum: err %v, output:\n%s", err, b)
	}
}
