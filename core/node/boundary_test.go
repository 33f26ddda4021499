package node

import (
	"os/exec"
	"slices"
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

// The engine only routes: what a tunnel carries is the business of the
// services built on its public tunnel API (api.go). It must not depend on
// IP packets (core/ippkt), on the IP adapters' interface (sdk/adapter),
// nor on the IP service or loop cover themselves.
func TestEngineImportsNoService(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/tarzan-net/tarzan/core/node").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/tarzan-net/tarzan/core/onion") {
		t.Fatalf("go list -deps gave %d packages, without core/onion: not the engine's dependencies\n%s", len(deps), out)
	}
	for _, dep := range deps {
		switch dep {
		case "github.com/tarzan-net/tarzan/core/ippkt",
			"github.com/tarzan-net/tarzan/sdk/adapter",
			"github.com/tarzan-net/tarzan/core/ipservice",
			"github.com/tarzan-net/tarzan/core/loopcover":
			t.Errorf("core/node depends on %s", dep)
		}
	}
}
