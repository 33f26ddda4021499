package builtin

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// newPlugin runs the shipped factory kind/name on opts and closes what it
// made; it returns the plugin's Name().
func newPlugin(t *testing.T, kind, name string, opts map[string]string) (string, error) {
	t.Helper()
	var p interface{ Name() string }
	var err error
	switch kind {
	case KindTransport:
		p, err = Transports[name](opts)
	case KindDiscovery:
		p, err = Discoveries[name](opts)
	case KindCover:
		p, err = Covers[name](opts)
	case KindAdapter:
		p, err = Adapters[name](opts)
	}
	if err != nil {
		return "", err
	}
	switch c := p.(type) {
	case interface{ Close() error }:
		c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return p.Name(), nil
}

// baseOptions are what a factory needs to start at all here: pt needs a
// PT binary, which the test machine may lack.
func baseOptions(t *testing.T, kind, name string) map[string]string {
	if kind == KindTransport && name == "pt" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"binary": self}
	}
	return map[string]string{}
}

func with(base map[string]string, k, v string) map[string]string {
	m := map[string]string{k: v}
	for bk, bv := range base {
		if bk != k {
			m[bk] = bv
		}
	}
	return m
}

// goodValue is a value of o the schema accepts, or "" if the test cannot
// make one here.
func goodValue(t *testing.T, o pluginkit.Option) string {
	switch o.Type {
	case pluginkit.TypeFile:
		f := filepath.Join(t.TempDir(), "peers")
		if err := os.WriteFile(f, []byte("192.0.2.1:7700\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	case pluginkit.TypeCommand:
		if _, err := exec.LookPath(o.Default); err != nil {
			return ""
		}
	}
	return o.Default
}

// knownList finds the list of keys in a factory's unknown-option error,
// e.g. `(known: batch, gro)` or `(want rate, interval)`.
var knownList = regexp.MustCompile(`\((?:known:|want) ([a-z0-9_]+(?:, [a-z0-9_]+)*)\)`)

// boundException are options whose bound in the schema the factory
// refuses alone, because of another option's value.
var boundException = map[string]bool{
	"kcp.mtu":           true, // with FEC on (the default) mtu must be at least 1452; without, less
	"kcp.fec_data":      true, // 0 only with fec_parity 0
	"kcp.fec_parity":    true, // 0 only with fec_data 0
	"balanced.max_rate": true, // at least min_rate
}

// badValues are values of o the schema refuses: of the wrong type, not
// among Values, below Min, above Max.
func badValues(o pluginkit.Option) []string {
	var out []string
	if o.Type != pluginkit.TypeString || len(o.Values) > 0 {
		out = append(out, "x!")
	}
	num := func(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }
	switch o.Type {
	case pluginkit.TypeInt:
		if o.Min != "" {
			out = append(out, strconv.Itoa(int(num(o.Min))-1))
		}
		if o.Max != "" {
			out = append(out, strconv.Itoa(int(num(o.Max))+1))
		}
	case pluginkit.TypeFloat:
		if o.Min != "" {
			if m := num(o.Min); m > 0 {
				out = append(out, "0")
			} else {
				out = append(out, strconv.FormatFloat(m-1, 'g', -1, 64))
			}
		}
		if o.Max != "" {
			out = append(out, strconv.FormatFloat(num(o.Max)+1, 'g', -1, 64))
		}
	case pluginkit.TypeDuration:
		if o.Min != "" {
			d, _ := time.ParseDuration(o.Min)
			out = append(out, (d - 1).String())
		}
	}
	return out
}

// TestSchemasAgreeWithFactories: every shipped plugin declares a valid
// schema under its registered name; its factory accepts each declared
// default and refuses an undeclared key and every value the schema
// refuses. So validate cannot pass what the node would refuse at start
// for these reasons, nor refuse a declared default.
func TestSchemasAgreeWithFactories(t *testing.T) {
	for _, kind := range []string{KindTransport, KindDiscovery, KindCover, KindAdapter} {
		for _, name := range Names(kind) {
			t.Run(kind+"/"+name, func(t *testing.T) {
				s := Schema(kind, name)
				if s == nil {
					t.Fatal("no option schema")
				}
				if err := s.Valid(); err != nil {
					t.Fatal(err)
				}
				if s.Name != name {
					t.Errorf("schema names itself %q", s.Name)
				}
				base := baseOptions(t, kind, name)
				got, err := newPlugin(t, kind, name, base)
				if err != nil {
					t.Fatalf("default options: %v", err)
				}
				if got != name {
					t.Errorf("Name() = %q, registered as %q", got, name)
				}
				if _, err := newPlugin(t, kind, name, with(base, "no_such_option", "1")); err == nil {
					t.Error("factory accepts an undeclared option")
				} else if m := knownList.FindStringSubmatch(err.Error()); m != nil {
					// The factory's own list of the keys it knows.
					known := strings.Split(m[1], ", ")
					sort.Strings(known)
					if !slices.Equal(known, s.Names()) {
						t.Errorf("factory knows %v, schema declares %v", known, s.Names())
					}
				}
				for _, o := range s.Options {
					if v := goodValue(t, o); v != "" {
						if _, err := newPlugin(t, kind, name, with(base, o.Name, v)); err != nil {
							t.Errorf("option %s = %q (schema: fine): factory refuses: %v", o.Name, v, err)
						}
					}
					for _, v := range []string{o.Min, o.Max} { // the bounds are tight
						if v != "" && o.Type != pluginkit.TypeDuration && !boundException[name+"."+o.Name] {
							if _, err := newPlugin(t, kind, name, with(base, o.Name, v)); err != nil {
								t.Errorf("option %s = %q (a bound in the schema): factory refuses: %v", o.Name, v, err)
							}
						}
					}
					for _, v := range badValues(o) {
						if o.Check(v) == nil {
							t.Errorf("option %s = %q: schema accepts the value meant to be bad", o.Name, v)
						}
						if _, err := newPlugin(t, kind, name, with(base, o.Name, v)); err == nil {
							t.Errorf("option %s = %q (schema: %v): factory accepts it", o.Name, v, o.Check(v))
						}
					}
				}
			})
		}
	}
}

// Every schema belongs to a registered plugin.
func TestNoStraySchemas(t *testing.T) {
	for kind, m := range schemas {
		for name := range m {
			found := false
			for _, n := range Names(kind) {
				found = found || n == name
			}
			if !found {
				t.Errorf("schema for %s/%s, which is not registered", kind, name)
			}
		}
	}
}
