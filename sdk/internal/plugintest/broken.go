package plugintest

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var brokenFailLine = regexp.MustCompile(`(?m)^\s*--- FAIL: TestBrokenChild/(\S+)`)

// RunBrokenChild re-runs the test binary's TestBrokenChild with env=name
// set (a conformance suite on one deliberately broken plugin) and returns
// the checks that failed, with subtest underscores back to spaces,
// sorted, and the child's output. A child whose suite passed fails t: a
// broken variant must be caught.
func RunBrokenChild(t *testing.T, env, name string, limit time.Duration) ([]string, []byte) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestBrokenChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+name)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed the broken %s", name)
	}
	var got []string
	for _, m := range brokenFailLine.FindAllStringSubmatch(string(out), -1) {
		if c := strings.ReplaceAll(m[1], "_", " "); !slices.Contains(got, c) {
			got = append(got, c)
		}
	}
	slices.Sort(got)
	return got, out
}
