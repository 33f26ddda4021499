package pluginkit

// Option schemas: a plugin says which keys its [<kind>.options] table
// takes, of what type, with what default, so that `tarzan validate` can
// check node.toml before the node starts (a wrong key or value then names
// the file and line instead of failing at start-up inside the child).
//
// A plugin declares its schema once, before serving:
//
//	var Options = pluginkit.Schema{Name: "xor", Options: []pluginkit.Option{
//		{Name: "key", Type: pluginkit.TypeString, Help: "XOR key, hex", Default: "5a"},
//		{Name: "queue", Type: pluginkit.TypeInt, Min: "1", Max: "65536", Default: "1024", Help: "..."},
//	}}
//
//	func main() {
//		pluginkit.Declare(Options)
//		transportplugin.Serve(New)
//	}
//
// and its factory should begin with `if err := Options.Check(opts); err != nil`
// so that what the schema says and what the factory accepts cannot drift.
//
// Describe request: a plugin binary run with DescribeEnv=1 in its
// environment (and no go-plugin handshake) prints its Description as one
// JSON object on stdout and exits 0, without serving. `tarzan validate`
// does this for external plugins, and only after the file matched its
// pinned SHA-256. A binary built before this SDK version ignores the
// variable; go-plugin then refuses to run without its handshake and exits
// non-zero, which validate reports as "options not described".

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DescribeEnv is the environment variable that makes Serve print the
// plugin's Description as JSON on stdout and exit instead of serving.
const DescribeEnv = "TARZAN_PLUGIN_DESCRIBE"

// DescribeFormat is the version of the Description JSON. It grows only by
// adding fields; a reader ignores fields it does not know.
const DescribeFormat = 1

// OptionType says how a plugin reads an option's value. Every option is
// a string in node.toml (an array is handed over joined with ","); the
// type is what the string must parse as.
type OptionType string

// The option types. Numbers and durations may carry surrounding spaces.
const (
	TypeString   OptionType = "string"   // any text
	TypeBool     OptionType = "bool"     // true or false (also 1, 0, t, f: strconv.ParseBool)
	TypeInt      OptionType = "int"      // a decimal integer
	TypeFloat    OptionType = "float"    // a finite decimal number
	TypeDuration OptionType = "duration" // a Go duration: "100ms", "2m", "1h30m"
	TypeAddr     OptionType = "addr"     // an IP address, e.g. 127.0.0.1 or ::1
	TypeAddrPort OptionType = "addrport" // IP:port, e.g. 127.0.0.1:1080 or [::1]:1080
	TypePrefix   OptionType = "prefix"   // an IP prefix, e.g. 100.64.0.2/10
	TypeFile     OptionType = "file"     // a path to a file that must exist
	TypeCommand  OptionType = "command"  // a program: a path, or a name looked up in PATH
)

var optionTypes = []OptionType{TypeString, TypeBool, TypeInt, TypeFloat, TypeDuration,
	TypeAddr, TypeAddrPort, TypePrefix, TypeFile, TypeCommand}

// Option describes one key of a plugin's options table.
type Option struct {
	Name string     `json:"name"`
	Type OptionType `json:"type"`
	// Default is the value used when the key is absent, as it would be
	// written in node.toml; "" when the default is none or computed (Help
	// then says what it is).
	Default string `json:"default,omitempty"`
	Help    string `json:"help"`
	// List: the value is a list (a TOML array, or elements separated by
	// ","); every element must be of Type. An empty list is allowed.
	List bool `json:"list,omitempty"`
	// Values, if set, are the only values allowed (of each element).
	Values []string `json:"values,omitempty"`
	// Min and Max bound an int, float or duration, written as such
	// ("1", "0.5", "100ms"); "" is unbounded.
	Min string `json:"min,omitempty"`
	Max string `json:"max,omitempty"`
	// AllowEmpty accepts "" for a scalar of any type (Help says what it
	// means, usually "off").
	AllowEmpty bool `json:"allow_empty,omitempty"`
	// Required: the plugin cannot start without this key.
	Required bool `json:"required,omitempty"`
}

// Schema is what a plugin declares: the name its Name method returns
// (the name node.toml selects it by) and the options it takes.
type Schema struct {
	Name    string   `json:"name"`
	Options []Option `json:"options"`
}

// Description is what a plugin binary prints for a describe request.
type Description struct {
	Format    int    `json:"tarzan_plugin_describe"` // DescribeFormat
	Kind      string `json:"kind"`                   // transport, discovery, cover, adapter
	Protocols []int  `json:"protocols"`              // plugin protocol versions it serves
	// Schema is nil if the plugin declared none (options unknown).
	Schema *Schema `json:"schema,omitempty"`
}

// OptionError is one problem with one option.
type OptionError struct {
	Key string // the option's name
	Msg string
}

func (e *OptionError) Error() string { return "option " + e.Key + ": " + e.Msg }

// Lookup returns the option called name, or nil.
func (s *Schema) Lookup(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

// Names lists the options' names, sorted.
func (s *Schema) Names() []string {
	out := make([]string, len(s.Options))
	for i, o := range s.Options {
		out[i] = o.Name
	}
	sort.Strings(out)
	return out
}

// Problems checks opts against the schema: unknown keys, values of the
// wrong type or out of range, missing required keys. Files and commands
// are looked for too (the check is meant to run where the plugin will).
// The problems are sorted by key.
func (s *Schema) Problems(opts map[string]string) []*OptionError {
	var out []*OptionError
	for k, v := range opts {
		o := s.Lookup(k)
		if o == nil {
			msg := "unknown option"
			if names := s.Names(); len(names) > 0 {
				msg += "; " + s.Name + " takes " + strings.Join(names, ", ")
			} else {
				msg += "; " + s.Name + " takes no options"
			}
			out = append(out, &OptionError{Key: k, Msg: msg})
			continue
		}
		if err := o.Check(v); err != nil {
			out = append(out, &OptionError{Key: k, Msg: err.Error()})
		}
	}
	for _, o := range s.Options {
		if _, ok := opts[o.Name]; o.Required && !ok {
			out = append(out, &OptionError{Key: o.Name, Msg: "is required: " + o.Help})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Check returns the first of Problems, prefixed with the plugin's name,
// or nil. A factory calls it first.
func (s *Schema) Check(opts map[string]string) error {
	if p := s.Problems(opts); len(p) > 0 {
		return fmt.Errorf("%s: %w", s.Name, p[0])
	}
	return nil
}

// Valid reports a mistake in the schema itself (a plugin author's): an
// empty or repeated name, an unknown type, a default, bound or allowed
// value that its own type refuses.
func (s *Schema) Valid() error {
	if s.Name == "" {
		return errors.New("schema: empty plugin name")
	}
	seen := map[string]bool{}
	for _, o := range s.Options {
		if o.Name == "" || seen[o.Name] {
			return fmt.Errorf("schema %s: option name %q is empty or repeated", s.Name, o.Name)
		}
		seen[o.Name] = true
		if !slices.Contains(optionTypes, o.Type) {
			return fmt.Errorf("schema %s: option %s: unknown type %q", s.Name, o.Name, o.Type)
		}
		for _, b := range []string{o.Min, o.Max} {
			if _, err := o.number(b); b != "" && err != nil {
				return fmt.Errorf("schema %s: option %s: bound %q: %v", s.Name, o.Name, b, err)
			}
		}
		if o.Default != "" && o.Type != TypeFile && o.Type != TypeCommand {
			if err := o.Check(o.Default); err != nil {
				return fmt.Errorf("schema %s: option %s: default %q: %v", s.Name, o.Name, o.Default, err)
			}
		}
	}
	return nil
}

// Check says why value is not a valid value of o, or nil.
func (o *Option) Check(value string) error {
	if !o.List {
		if value == "" && o.AllowEmpty {
			return nil
		}
		return o.checkOne(value)
	}
	if strings.TrimSpace(value) == "" {
		return nil
	}
	for i, e := range strings.Split(value, ",") {
		if err := o.checkOne(strings.TrimSpace(e)); err != nil {
			return fmt.Errorf("element %d: %w", i+1, err)
		}
	}
	return nil
}

func (o *Option) checkOne(v string) error {
	if len(o.Values) > 0 && !slices.Contains(o.Values, v) {
		return fmt.Errorf("%q is not one of %s", v, strings.Join(o.Values, ", "))
	}
	t := strings.TrimSpace(v)
	var err error
	switch o.Type {
	case TypeBool:
		if _, e := strconv.ParseBool(t); e != nil {
			err = fmt.Errorf("%q is not true or false", v)
		}
	case TypeInt, TypeFloat, TypeDuration:
		return o.checkNumber(v)
	case TypeAddr:
		if a, e := netip.ParseAddr(t); e != nil || a.Zone() != "" {
			err = fmt.Errorf("%q is not an IP address", v)
		}
	case TypeAddrPort:
		if _, e := netip.ParseAddrPort(t); e != nil {
			err = fmt.Errorf("%q is not an IP:port address", v)
		}
	case TypePrefix:
		if _, e := netip.ParsePrefix(t); e != nil {
			err = fmt.Errorf("%q is not an IP prefix such as 10.0.0.0/8", v)
		}
	case TypeFile:
		err = checkFile(v)
	case TypeCommand:
		if v == "" {
			err = errors.New("is empty: want a program")
		} else if _, e := exec.LookPath(v); e != nil {
			err = fmt.Errorf("program %q not found (%v)", v, unwrapAll(e))
		}
	}
	return err
}

func (o *Option) checkNumber(v string) error {
	x, err := o.number(v)
	if err != nil {
		return err
	}
	lo, _ := o.number(o.Min)
	hi, _ := o.number(o.Max)
	if (o.Min != "" && x < lo) || (o.Max != "" && x > hi) {
		switch {
		case o.Max == "":
			return fmt.Errorf("%s is below %s", strings.TrimSpace(v), o.Min)
		case o.Min == "":
			return fmt.Errorf("%s is above %s", strings.TrimSpace(v), o.Max)
		}
		return fmt.Errorf("%s is out of range %s..%s", strings.TrimSpace(v), o.Min, o.Max)
	}
	return nil
}

// number parses v as o's numeric type (durations in nanoseconds).
func (o *Option) number(v string) (float64, error) {
	t := strings.TrimSpace(v)
	switch o.Type {
	case TypeInt:
		n, err := strconv.Atoi(t)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", v)
		}
		return float64(n), nil
	case TypeFloat:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a finite number", v)
		}
		return f, nil
	case TypeDuration:
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf(`%q is not a duration (write e.g. "100ms", "2m", "1h30m")`, v)
		}
		return float64(d), nil
	}
	return 0, fmt.Errorf("type %s has no range", o.Type)
}

func checkFile(path string) error {
	if path == "" {
		return errors.New("is empty: want a file")
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("file %s: %v", path, unwrapAll(err))
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a file", path)
	}
	return nil
}

// unwrapAll is the innermost error: "no such file or directory" rather
// than the path again.
func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

var declared struct {
	sync.Mutex
	schema *Schema
}

// Declare records the schema the plugin's describe request answers with.
// Call it before Serve. It panics on an invalid schema (Valid), a
// programming mistake.
func Declare(s Schema) {
	if err := s.Valid(); err != nil {
		panic(err)
	}
	declared.Lock()
	declared.schema = &s
	declared.Unlock()
}

// Declared returns the schema given to Declare, or nil.
func Declared() *Schema {
	declared.Lock()
	defer declared.Unlock()
	return declared.schema
}

// describeIfAsked answers a describe request (DescribeEnv=1) and exits;
// otherwise it returns.
func describeIfAsked(kind string, versions []int) {
	if os.Getenv(DescribeEnv) != "1" {
		return
	}
	if err := WriteDescription(os.Stdout, kind, versions); err != nil {
		fmt.Fprintln(os.Stderr, "describe:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// WriteDescription writes the Description of this process's plugin.
func WriteDescription(w io.Writer, kind string, versions []int) error {
	return json.NewEncoder(w).Encode(Description{Format: DescribeFormat, Kind: kind, Protocols: versions, Schema: Declared()})
}
