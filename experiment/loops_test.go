package experiment

import (
	"strings"
	"testing"
)

// The traffic model sends no loop cover: a sweep that gives poisson a
// loop_rate is refused before any run, naming the option and why, and
// loop_rate = 0 (no loops) is run as before.
func TestLoopRateRefused(t *testing.T) {
	const head = "[network]\nnodes = [20]\ninitiators = 2\nwarmup = \"1s\"\nduration = \"2s\"\n[[policy]]\nname = \"p\"\nplugin = \"poisson\"\n"
	for _, body := range []string{
		head + "options = { loop_rate = \"5\" }\n",
		head + "sweep = { loop_rate = [\"0\", \"2\"] }\n",
	} {
		f, err := Load(write(t, body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Sweep(f, Options{})
		if err == nil || !strings.Contains(err.Error(), "loop_rate") || !strings.Contains(err.Error(), "traffic model") {
			t.Errorf("%q: error %v, want one naming loop_rate and the traffic model", body, err)
		}
		if res != nil && len(res.Runs) != 0 {
			t.Errorf("%q: %d runs before the refusal, want none", body, len(res.Runs))
		}
	}
	f, err := Load(write(t, head+"options = { loop_rate = \"0\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sweep(f, Options{})
	if err != nil || len(res.Runs) != 1 {
		t.Fatalf("loop_rate = 0: %v, %v", res, err)
	}
}
