package static

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// maxLine bounds a line of a bootstrap file: a base64 descriptor of
// maxDescriptor bytes and some room for spaces and a comment.
const maxLine = 4096

// ReadFile reads a bootstrap file (see the package comment). Errors name
// the file and the line.
func ReadFile(path string) ([]discovery.Proposal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap file: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads bootstrap entries from r; name is used in errors.
func Parse(r io.Reader, name string) ([]discovery.Proposal, error) {
	var out []discovery.Proposal
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		p, err := parseEntry(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

// parseEntry parses "host:port" or "desc <base64>".
func parseEntry(text string) (discovery.Proposal, error) {
	fields := strings.Fields(text)
	if fields[0] != "desc" {
		if len(fields) > 1 {
			return discovery.Proposal{}, fmt.Errorf("%q: want one host:port or \"desc <base64>\" per line", text)
		}
		ap, err := parseAddr(fields[0])
		if err != nil {
			return discovery.Proposal{}, err
		}
		return discovery.Proposal{Addr: ap}, nil
	}
	if len(fields) != 2 {
		return discovery.Proposal{}, fmt.Errorf("desc: want \"desc <base64 descriptor>\", got %d fields", len(fields))
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(fields[1], "=") && len(fields[1])%4 != 0 {
		enc = base64.RawStdEncoding
	}
	d, err := enc.DecodeString(fields[1])
	if err != nil {
		return discovery.Proposal{}, fmt.Errorf("desc: bad base64: %w", err)
	}
	if len(d) == 0 || len(d) > maxDescriptor {
		return discovery.Proposal{}, fmt.Errorf("desc: %d bytes, want 1..%d", len(d), maxDescriptor)
	}
	return discovery.Proposal{Descriptor: d}, nil
}
