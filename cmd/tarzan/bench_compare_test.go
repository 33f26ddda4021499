package main

import (
	"os/exec"
	"testing"
)

// `tarzan bench compare` explains its metrics and rejects bad flags
// before starting anything (the live comparison is tested in
// host/sidebyside).
func TestBenchCompareFlags(t *testing.T) {
	out, _ := exec.Command(tarzanBin, "bench", "compare", "-h").CombinedOutput()
	if !containsAll(string(out), "CPU-s per 100 MiB", "time to first byte", "idle CPU", "-baseline", "apt-get install tor") {
		t.Errorf("bench compare -h does not explain the metrics:\n%s", out)
	}
	for _, bad := range [][]string{{"-baseline", "yggdrasil", "yggdrasil"}, {"-size", "lots", "lots"}, {"-runs", "0", "positive"}} {
		out, err := exec.Command(tarzanBin, "bench", "compare", bad[0], bad[1]).CombinedOutput()
		if exitCode(err) != 1 || !containsAll(string(out), bad[2]) {
			t.Errorf("bench compare %v: %v\n%s", bad, err, out)
		}
	}
}
