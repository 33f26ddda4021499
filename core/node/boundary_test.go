package node

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
// IP packets (sdk/ippkt), on the IP adapters' interface (sdk/adapter),
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
		case "github.com/tarzan-net/tarzan/sdk/ippkt",
			"github.com/tarzan-net/tarzan/sdk/adapter",
			"github.com/tarzan-net/tarzan/core/ipservice",
			"github.com/tarzan-net/tarzan/core/loopcover":
			t.Errorf("core/node depends on %s", dep)
		}
	}
}

// The engine's counters are the engine's: names that only the IP service
// or loop cover count live in core/ipservice/stats.go and
// core/loopcover/stats.go. This fails when core/node declares a string
// constant in their vocabulary again.
func TestEngineDeclaresNoServiceCounter(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	servicePrefixes := []string{"drop_ip_", "drop_exit_policy", "drop_adapter", "drop_no_tunnel", "drop_exit_aside", "loop", "flows_", "exit_flows_", "exit_adapter_"}
	consts := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					consts++
					s, _ := strconv.Unquote(lit.Value)
					for _, p := range servicePrefixes {
						if strings.HasPrefix(s, p) {
							t.Errorf("%s: core/node declares counter %q, which belongs to a service (prefix %q)", fset.Position(lit.Pos()), s, p)
						}
					}
				}
			}
		}
	}
	// The engine's own counters are string constants too: seeing none
	// would mean the test looked in the wrong place.
	if consts < 30 {
		t.Fatalf("found %d string constants in core/node: not the engine's sources", consts)
	}
}
