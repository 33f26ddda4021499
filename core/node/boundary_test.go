package node

import (
	"os/exec"
	"strings"
	"testing"
)

// The core must never depend on plugin machinery: no gRPC, no go-plugin,
// no shipped plugin. This is what keeps every plugin swappable.
func TestCoreImportsNoPluginMachinery(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tarzan-net/tarzan/core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "google.golang.org/grpc") ||
			strings.HasPrefix(dep, "github.com/hashicorp/go-plugin") ||
			strings.HasPrefix(dep, "github.com/tarzan-net/tarzan/plugins/") {
			t.Errorf("core depends on %s", dep)
		}
	}
}
