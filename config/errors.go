package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every error that a bad configuration causes
// (syntax, unknown key, wrong type, invalid value).
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem in a configuration file. When a file has several,
// Load returns them joined (errors.Join), sorted by line; errors.As finds
// the first.
type Error struct {
	File string // as given to Load or Parse
	Line int    // 1-based; 0 if unknown (a Config built in code)
	Key  string // dotted key, e.g. "transport.listen"; empty for some syntax errors
	Msg  string
	err  error // underlying cause, e.g. a toml.ParseError
}

// Error formats as "file:line: key: msg", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid and, if there is one, the underlying cause.
func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalid, e.err}
	}
	return []error{ErrInvalid}
}

// checker collects errors, naming the line of each key in the file.
type checker struct {
	file  string
	lines keyLines // nil when there is no file text
	errs  []*Error
}

// fail records msg for key at the key's line.
func (v *checker) fail(key, format string, args ...any) {
	v.failAt(key, key, format, args...)
}

// failAt records msg for key at the line of near, for a problem with a key
// that may be absent from the file (e.g. a missing sha256 is reported at
// the path that needs it).
func (v *checker) failAt(key, near, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.lines.find(near), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
