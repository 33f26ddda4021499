package config

import (
	"bytes"
	"errors"
	"strings"

	"github.com/BurntSushi/toml"
)

// parse turns file text into a validated Config: TOML syntax, then unknown
// keys, then each known key's type, then values; all problems found in
// the last three steps are reported together.
func parse(name string, data []byte, dir string) (*Config, error) {
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, syntaxError(name, data, err)
	}
	v := &checker{file: name, lines: scanKeyLines(data)}
	c := Default()
	c.File = name
	unknownKeys(v, md.Keys())
	for _, sec := range schema {
		t, ok := raw[sec.name]
		if !ok {
			continue
		}
		table, ok := t.(map[string]any)
		if !ok {
			v.fail(sec.name, "must be a table ([%s]), not %s", sec.name, tomlType(t))
			continue
		}
		for _, f := range sec.fields {
			val, ok := table[strings.TrimPrefix(f.key, sec.name+".")]
			if !ok {
				continue
			}
			if err := f.decode(c, val); err != nil {
				key := f.key
				var ke *keyError
				if errors.As(err, &ke) {
					key += "." + toml.Key{ke.key}.String()
				}
				v.fail(key, "%v", err)
			}
		}
	}
	if len(v.errs) == 0 { // a value that failed to decode would be checked as its default
		c.validate(v)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c.resolve(dir)
	return c, nil
}

// syntaxError reports a TOML parse failure at its line. The line is
// counted from the error's byte offset because the parser numbers an error
// found at a newline (e.g. an unclosed "[table") with the next line.
func syntaxError(name string, data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if start := pe.Position.Start; start >= 0 && start <= len(data) {
			line = bytes.Count(data[:start], []byte("\n")) + 1
		}
		return &Error{File: name, Line: line, Msg: pe.Message, err: err}
	}
	return &Error{File: name, Msg: err.Error(), err: err}
}

// unknownKeys reports each key that is not in the schema, once: a key under
// an unknown key is not reported again, and keys under a known field
// (options entries, or the parts of a value of the wrong type) are left to
// that field's decoder.
func unknownKeys(v *checker, keys []toml.Key) {
	var reported []toml.Key
next:
	for _, k := range keys {
		for _, r := range reported {
			if len(k) > len(r) && slicesEqual(k[:len(r)], r) {
				continue next
			}
		}
		sec := sectionNamed(k[0])
		switch {
		case sec == nil:
			v.fail(k.String(), "unknown section; node.toml has %s", sectionList())
		case len(k) == 1 || sec.field(k[0]+"."+k[1]) != nil:
			continue
		default:
			v.fail(k.String(), "unknown key; [%s] takes %s", sec.name, sec.keyList())
		}
		reported = append(reported, k)
	}
}

func sectionNamed(name string) *section {
	for i := range schema {
		if schema[i].name == name {
			return &schema[i]
		}
	}
	return nil
}

func (s *section) field(key string) *field {
	for i := range s.fields {
		if s.fields[i].key == key {
			return &s.fields[i]
		}
	}
	return nil
}

func (s *section) keyList() string {
	names := make([]string, len(s.fields))
	for i, f := range s.fields {
		names[i] = strings.TrimPrefix(f.key, s.name+".")
	}
	return strings.Join(names, ", ")
}

func sectionList() string {
	names := make([]string, len(schema))
	for i, s := range schema {
		names[i] = "[" + s.name + "]"
	}
	return strings.Join(names, ", ")
}

func slicesEqual(a, b toml.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
