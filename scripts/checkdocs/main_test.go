package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRepositoryDocsCiteExistingPaths is the check CI relies on: every
// path the repository's Markdown cites exists.
func TestRepositoryDocsCiteExistingPaths(t *testing.T) {
	problems, err := check("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("cited path does not exist: %s", p)
	}
}

func TestCheckFindsMissingAndAcceptsPresent(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"core/onion/relay.go", "core/onion/path.go", "sdk/cover/cover.go", "docs/x.md", "scripts/lib/suite.sh"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := "See `core/onion/{relay,path,keys}.go`, `sdk/cover.Policy`, `core/onion/relay.go:12`,\n" +
		"[suite](../scripts/lib/suite.sh) and `lib/suite.sh`, not `10.0.0.0/8` or `log/slog`.\n" +
		"Gone: `core/node/loop.go` and [old](old.md).\n"
	if err := os.WriteFile(filepath.Join(root, "scripts", "README.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"scripts/README.md:1: core/onion/keys.go",
		"scripts/README.md:3: core/node/loop.go",
		"scripts/README.md:3: old.md",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n got %q\nwant %q", got, want)
	}
}
