package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cmd/tarzan is flags and output: assembling a node is package host's
// job, launching networks host/localnet's, inspecting plugins
// host/plugincheck's. These limits keep it so (issue 12).
const (
	maxCommandLines = 1200 // every line of the non-test files, comments included
	maxFuncLines    = 60   // from func to its closing brace
)

func TestCommandStaysSmall(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	total := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(src, []byte("\n"))
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				t.Errorf("%s: func %s is %d lines, more than %d: move logic out of cmd/tarzan or split it", name, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
	t.Logf("cmd/tarzan: %d non-test lines", total)
	if total >= maxCommandLines {
		t.Errorf("cmd/tarzan has %d non-test lines, want fewer than %d", total, maxCommandLines)
	}
}
