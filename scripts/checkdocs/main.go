// Command checkdocs reports file paths cited in the repository's Markdown
// documents that do not exist, so that docs stop pointing at files a
// refactoring moved or removed. CI runs it through its test.
//
// A citation is a backticked token or a Markdown link target that names a
// repository path: it starts with a top-level directory of the repository
// (core/, sdk/, plugins/, ...) or ends in a file extension the repository
// uses (.go, .md, .sh, .toml, .json). Paths are resolved against the
// repository root and against the citing document's directory; a bare
// Go file name (`wipe.go`) must exist somewhere in the repository, other
// bare names in backticks (`results.json`, an output) are not checked;
// link targets always are. Brace
// lists (`core/onion/{relay,path}.go`) are expanded, and a Go selector
// after a package path (`sdk/cover.Policy`, `covertest.Run`) or a line
// suffix (`relay.go:120`) is ignored.
//
// Usage: go run ./scripts/checkdocs [repository root]
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	problems, err := check(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkdocs:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "checkdocs: %d cited paths do not exist\n", len(problems))
		os.Exit(1)
	}
}

var (
	backticked = regexp.MustCompile("`([^`\\s]+)`")
	linkTarget = regexp.MustCompile(`\]\(([^)\s#]+)(?:#[^)]*)?\)`)
	fileExt    = regexp.MustCompile(`\.(go|md|sh|toml|json)$`)
	lineSuffix = regexp.MustCompile(`:[0-9]+(-[0-9]+)?$`)
	braces     = regexp.MustCompile(`\{([^{}]*)\}`)
)

// check returns one line per missing citation: "doc:line: path".
func check(root string) ([]string, error) {
	tops, err := topDirs(root)
	if err != nil {
		return nil, err
	}
	goFiles := map[string]bool{} // base names of every Go file, for bare citations
	var docs []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "node_modules") {
			return filepath.SkipDir
		}
		switch {
		case d.IsDir():
		case strings.HasSuffix(name, ".go"):
			goFiles[name] = true
		case strings.HasSuffix(name, ".md") && !strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)):
			docs = append(docs, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, path := range docs {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(text), "\n") {
			for _, c := range citations(line, tops) {
				if !(goFiles[c] || exists(root, filepath.Dir(path), c)) {
					problems = append(problems, fmt.Sprintf("%s:%d: %s", rel, i+1, c))
				}
			}
		}
	}
	return problems, nil
}

// topDirs lists the repository's top-level directories (the prefixes a
// cited path starts with).
func topDirs(root string) (map[string]bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	tops := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			tops[e.Name()] = true
		}
	}
	return tops, nil
}

// citations returns the repository paths one line of Markdown cites.
func citations(line string, tops map[string]bool) []string {
	var out []string
	add := func(tok string, link bool) {
		tok = strings.TrimSuffix(strings.TrimPrefix(tok, "./"), ",")
		tok = lineSuffix.ReplaceAllString(tok, "")
		if strings.Contains(tok, "://") || strings.HasPrefix(tok, "/") || strings.HasPrefix(tok, "../") || strings.ContainsAny(tok, "*$<>=\"'") {
			return
		}
		first, _, nested := strings.Cut(tok, "/")
		if !(nested && tops[first]) && !fileExt.MatchString(tok) {
			return
		}
		if !nested && !link && !strings.HasSuffix(tok, ".go") {
			return // a bare output or outside document name: nothing to resolve
		}
		out = append(out, expand(tok)...)
	}
	for _, m := range backticked.FindAllStringSubmatch(line, -1) {
		add(m[1], false)
	}
	for _, m := range linkTarget.FindAllStringSubmatch(line, -1) {
		add(m[1], true)
	}
	return out
}

// expand turns the first brace list into one path per alternative,
// recursively.
func expand(p string) []string {
	loc := braces.FindStringSubmatchIndex(p)
	if loc == nil {
		return []string{p}
	}
	var out []string
	for _, alt := range strings.Split(p[loc[2]:loc[3]], ",") {
		out = append(out, expand(p[:loc[0]]+alt+p[loc[1]:])...)
	}
	return out
}

// exists reports whether the cited path names a file or directory, from
// the root or from the citing document's directory, allowing a Go
// selector after a package directory (sdk/cover.Policy).
func exists(root, docDir, p string) bool {
	p = strings.TrimSuffix(p, "/")
	for _, base := range []string{root, docDir} {
		full := filepath.Join(base, p)
		if _, err := os.Stat(full); err == nil {
			return true
		}
		if i := strings.LastIndex(full, "."); i > strings.LastIndex(full, "/") && !fileExt.MatchString(full) {
			if st, err := os.Stat(full[:i]); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return false
}
