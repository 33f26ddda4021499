package experiment

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/sim/traffic"
)

const small = `
name = "t"
seed = 4
[network]
nodes = [40]
initiators = 6
warmup = "2s"
duration = "20s"
[[workload]]
name = "onoff"
kind = "onoff"
rate = 50
on = "1s"
off = "1s"
[[policy]]
name = "none"
plugin = "none"
[[policy]]
name = "constant"
plugin = "constant"
sweep = { rate = ["30", "60"] }
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sweep.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A sweep runs every policy variant; without cover the flow-correlation
// attack finds the initiators, with constant cover it does not, and the
// same file and seed give the same results.json byte for byte.
func TestSweepDeterministicAndCoverHelps(t *testing.T) {
	f, err := Load(write(t, small))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sweep(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 3 {
		t.Fatalf("%d runs, want 3 (none, constant rate=30, constant rate=60)", len(res.Runs))
	}
	none, c60 := res.Runs[0], res.Runs[2]
	if none.Policy != "none" || c60.Policy != "constant rate=60" || c60.Options["rate"] != "60" {
		t.Fatalf("runs %q, %q (options %v)", none.Policy, c60.Policy, c60.Options)
	}
	if none.Correlation.Top1 < 0.8 || none.Overhead != 1 {
		t.Errorf("no cover: top-1 %.2f (want ≥ 0.8), overhead %.2f (want 1)", none.Correlation.Top1, none.Overhead)
	}
	if c60.Correlation.Top1 > 0.5 || c60.Correlation.Entropy <= none.Correlation.Entropy || c60.Overhead <= 1 {
		t.Errorf("constant cover: top-1 %.2f, H %.2f (none %.2f), overhead %.2f", c60.Correlation.Top1, c60.Correlation.Entropy, none.Correlation.Entropy, c60.Overhead)
	}

	dir1, dir2 := t.TempDir(), t.TempDir()
	paths, err := Write(dir1, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 4 { // results.json, two plots, report.md
		t.Errorf("wrote %v", paths)
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
	rep, _ := os.ReadFile(filepath.Join(dir1, "report.md"))
	if !strings.Contains(string(rep), "| constant rate=60 |") {
		t.Errorf("report.md lacks the constant rate=60 row:\n%s", rep)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`name = "x"` + "\n[[policy]]\nname = \"a\"\n", "set plugin"},
		{"[[policy]]\nplugin = \"none\"\n[network]\nnodez = [3]\n", "unknown key network.nodez"},
		{"[[policy]]\nplugin = \"none\"\n[network]\nlatency = \"fast\"\n", "not a duration"},
		{"[[policy]]\npath = \"/bin/true\"\n", "needs sha256"},
		{"name = \n", "sweep.toml:1"},
		{"[[policy]]\nplugin = \"none\"\n[[workload]]\nkind = \"bulk\"\n", `kind "bulk"`},
		{"[[policy]]\nplugin = \"none\"\n[[workload]]\nack_every = 2\n", "needs ack_delay"},
		{"[[policy]]\nplugin = \"none\"\n[[workload]]\nack_delay = \"40ms\"\n", "ack_delay without ack_every"},
		{"[[policy]]\nplugin = \"none\"\n[[workload]]\nack_every = -1\n", "must not be negative"},
	} {
		_, err := Load(write(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.body, err, tc.want)
		}
	}
}

func TestUnknownPolicy(t *testing.T) {
	f, err := Load(write(t, "[network]\nnodes = [20]\ninitiators = 2\nduration = \"2s\"\n[[policy]]\nplugin = \"nosuch\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sweep(f, Options{}); err == nil || !strings.Contains(err.Error(), "not shipped") {
		t.Errorf("error %v, want one saying the policy is not shipped", err)
	}
}

// A workload's ack_every reaches the model: without cover every frame is
// data, and acknowledging every frame doubles the frames on the wire per
// frame of payload delivered (the acknowledgements are not goodput).
func TestAckEvery(t *testing.T) {
	const body = "seed = 2\n[network]\nnodes = [20]\ninitiators = 3\nwarmup = \"1s\"\nduration = \"10s\"\n" +
		"[[workload]]\nname = \"plain\"\nrate = 20\n[[workload]]\nname = \"acked\"\nrate = 20\nack_every = 1\n" +
		"[[policy]]\nplugin = \"none\"\n"
	f, err := Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sweep(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, acked := res.Runs[0], res.Runs[1]
	if acked.Workload != "acked" || plain.Workload != "plain" {
		t.Fatalf("runs %q, %q", plain.Workload, acked.Workload)
	}
	// Frames on the wire per payload frame delivered: one per hop, and
	// as many again with acknowledgements.
	perFrame := func(r Run) float64 { return float64(r.DataFrames) / (r.Goodput * 10 / traffic.PayloadBytes) }
	if p, a := perFrame(plain), perFrame(acked); p < 2.8 || p > 3.2 || a < 5.6 || a > 6.4 {
		t.Errorf("data frames per payload frame delivered: %.2f without acknowledgements (want 3, one per hop), %.2f with (want 6)", p, a)
	}
}
