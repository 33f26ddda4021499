package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyPluginDependencies keeps the SDK a module a plugin can require
// without the node: built as its own main module (this directory's
// go.mod), no SDK package or test may import the node's packages or the
// node's heavy dependencies. From the node's module an import of, say,
// github.com/tarzan-net/tarzan/config would still compile (the node's
// module provides it), so this check runs `go list` here, read-only.
func TestOnlyPluginDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-mod=readonly", "-deps", "-test", "./...")
	cmd.Dir = "." // the SDK module's root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list in the SDK's own module failed (does an SDK package import the node?): %v\n%s", err, out)
	}
	forbidden := []string{"gonum.org/", "gvisor.dev/", "golang.zx2c4.com/", "github.com/prometheus/"}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/tarzan-net/tarzan/") && !strings.HasPrefix(pkg, "github.com/tarzan-net/tarzan/sdk") {
			t.Errorf("the SDK depends on the node's package %s", pkg)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("the SDK depends on %s, a node-only dependency", pkg)
			}
		}
	}
}
