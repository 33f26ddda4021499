// Command sdkproxy writes a Go module proxy directory (the GOPROXY
// protocol's file layout) that serves one module from a directory of the
// checkout, so that `go get` can fetch it as an outside author would fetch
// a released version: GOPROXY=file://OUT,... (scripts/sdk-outside.sh).
//
// It writes OUT/<module>/@v/{list, VERSION.info, VERSION.mod, VERSION.zip}.
// The zip holds what a module zip made by the go command would: every
// regular file under the directory, each named <module>@<version>/<path>,
// without subdirectories that are modules of their own (a go.mod of their
// own, e.g. sdk/examples/*), VCS directories or vendor directories.
//
// Usage: go run ./scripts/sdkproxy -dir sdk -module github.com/tarzan-net/tarzan/sdk -version v0.1.0 -out DIR
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", "", "the module's directory (holds its go.mod)")
	module := flag.String("module", "", "the module path, as in its go.mod")
	version := flag.String("version", "", "the version to serve it as, e.g. v0.1.0")
	out := flag.String("out", "", "the proxy directory to write (GOPROXY=file://OUT)")
	stamp := flag.String("time", "", "the version's time, RFC 3339 (default: now)")
	flag.Parse()
	if *dir == "" || *module == "" || *version == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	t := time.Now().UTC()
	if *stamp != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, *stamp); err != nil {
			fail(fmt.Errorf("-time: %w", err))
		}
	}
	n, err := write(*dir, *module, *version, *out, t)
	if err != nil {
		fail(err)
	}
	fmt.Printf("sdkproxy: %s@%s, %d files, in %s\n", *module, *version, n, *out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sdkproxy:", err)
	os.Exit(1)
}

// write creates the proxy files and returns how many files the zip holds.
func write(dir, module, version, out string, t time.Time) (int, error) {
	if !strings.HasPrefix(version, "v") {
		return 0, fmt.Errorf("version %q: must start with v", version)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return 0, err
	}
	if !strings.Contains(string(gomod), "module "+module+"\n") {
		return 0, fmt.Errorf("%s/go.mod does not declare module %s", dir, module)
	}
	files, err := moduleFiles(dir)
	if err != nil {
		return 0, err
	}
	at := filepath.Join(out, filepath.FromSlash(escape(module)), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return 0, err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, t})
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  gomod,
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return 0, err
		}
	}
	return len(files), writeZip(filepath.Join(at, version+".zip"), dir, module+"@"+version, files)
}

// moduleFiles lists the regular files of the module rooted at dir, as
// slash-separated paths relative to dir, sorted.
func moduleFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if path == dir {
				return nil
			}
			switch d.Name() {
			case ".git", ".hg", ".svn", ".bzr", "vendor":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(files)
	if len(files) == 0 && err == nil {
		err = errors.New("no files")
	}
	return files, err
}

func writeZip(name, dir, prefix string, files []string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, rel := range files {
		w, err := zw.Create(prefix + "/" + rel)
		if err != nil {
			f.Close()
			return err
		}
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// escape is the proxy protocol's case encoding: an upper-case letter
// becomes '!' and its lower case (module.EscapePath).
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
