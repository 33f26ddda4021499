// Package experiment runs traffic-analysis sweeps: cover policies ×
// their parameters × workloads × network sizes, each run on the
// deterministic data-plane model of package sim/traffic and scored by the
// global passive adversary of package sim/adversary. It writes
// results.json, report.md and plots; docs/EXPERIMENTS.md explains how to
// write a sweep file and read the report.
package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// File is a sweep file (TOML).
type File struct {
	Name string `toml:"name"`
	Seed uint64 `toml:"seed"`
	// Seeds runs every point this many times, with seeds Seed, Seed+1,
	// ...: the report and plots show each point's median and its spread
	// (min–max). Default 1. The simulator only; the test bed runs each
	// point once.
	Seeds int `toml:"seeds"`

	Network  Network    `toml:"network"`
	Attack   Attack     `toml:"attack"`
	Workload []Workload `toml:"workload"`
	Policy   []Policy   `toml:"policy"`

	path string
}

// Network is the simulated network; Nodes is swept.
type Network struct {
	Nodes      []int    `toml:"nodes"`
	K          int      `toml:"k"`
	Hops       int      `toml:"hops"`
	Domains    int      `toml:"domains"` // 0: nodes/2
	Initiators int      `toml:"initiators"`
	Latency    Duration `toml:"latency"`
	Jitter     Duration `toml:"jitter"`
	Capacity   float64  `toml:"capacity"` // frames/s per link
	Warmup     Duration `toml:"warmup"`
	Duration   Duration `toml:"duration"`
}

// Attack tunes the adversary.
type Attack struct {
	Bin     Duration `toml:"bin"`
	Window  Duration `toml:"window"`
	MaxLag  Duration `toml:"max_lag"`
	Horizon Duration `toml:"horizon"`
}

// Workload is one workload of the sweep (see traffic.Workload).
type Workload struct {
	Name string   `toml:"name"`
	Kind string   `toml:"kind"`
	Rate float64  `toml:"rate"`
	On   Duration `toml:"on"`
	Off  Duration `toml:"off"`
	Size float64  `toml:"size"`
	// AckEvery and AckDelay: acknowledgements sent back through the
	// tunnel, as TCP does (traffic.Workload). The test bed's TCP
	// acknowledges as its stacks do whatever these say.
	AckEvery int      `toml:"ack_every"`
	AckDelay Duration `toml:"ack_delay"`
}

// Policy is one cover policy of the sweep: a shipped one by name
// (plugin), or an external plugin executable (path, pinned by sha256).
// Options are passed as they are; Sweep lists values per option, and
// the policy runs once per combination.
type Policy struct {
	Name    string              `toml:"name"`
	Plugin  string              `toml:"plugin"`
	Path    string              `toml:"path"`
	SHA256  string              `toml:"sha256"`
	Options map[string]string   `toml:"options"`
	Sweep   map[string][]string `toml:"sweep"`
}

// Duration is a time.Duration written as "20ms" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like \"20ms\" or \"1m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Load reads and checks a sweep file. Errors name the file, the line
// when TOML knows it, and the key.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path}
	md, err := toml.Decode(string(b), f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s:%d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s", path, strings.Join(keys, ", "))
	}
	f.setDefaults()
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: locating it: %w", path, err)
	}
	f.resolve(dir)
	return f, nil
}

// resolve makes relative plugin paths relative to dir (the sweep file's
// directory), as node.toml's are, instead of to the working directory.
// A policy named after its path keeps the name as written.
func (f *File) resolve(dir string) {
	for i := range f.Policy {
		if p := &f.Policy[i]; p.Path != "" && !filepath.IsAbs(p.Path) {
			p.Path = filepath.Join(dir, p.Path)
		}
	}
}

func (f *File) setDefaults() {
	if f.Name == "" {
		f.Name = "experiment"
	}
	if f.Seed == 0 {
		f.Seed = 1
	}
	if f.Seeds == 0 {
		f.Seeds = 1
	}
	n := &f.Network
	if len(n.Nodes) == 0 {
		n.Nodes = []int{200}
	}
	a := &f.Attack
	if a.Bin.Duration == 0 {
		a.Bin.Duration = 10 * time.Millisecond
	}
	if len(f.Workload) == 0 {
		f.Workload = []Workload{{Name: "onoff", Kind: "onoff", Rate: 50}}
	}
	for i := range f.Workload {
		w := &f.Workload[i]
		if w.Kind == "" {
			w.Kind = "onoff"
		}
		if w.Name == "" {
			w.Name = fmt.Sprintf("%s-%g", w.Kind, w.Rate)
		}
	}
	for i := range f.Policy {
		p := &f.Policy[i]
		if p.Name == "" {
			p.Name = p.Plugin
			if p.Path != "" {
				p.Name = p.Path
			}
		}
	}
}

func (f *File) validate() error {
	if len(f.Policy) == 0 {
		return errors.New("no [[policy]]: name at least one cover policy to sweep")
	}
	if f.Seeds < 1 || f.Seeds > 100 {
		return fmt.Errorf("seeds: %d out of range 1..100", f.Seeds)
	}
	names := map[string]bool{}
	for i, p := range f.Policy {
		switch {
		case p.Plugin == "" && p.Path == "":
			return fmt.Errorf("policy[%d] (%s): set plugin (a shipped policy) or path (an external plugin)", i, p.Name)
		case p.Plugin != "" && p.Path != "":
			return fmt.Errorf("policy[%d] (%s): set plugin or path, not both", i, p.Name)
		case p.Path != "" && p.SHA256 == "":
			return fmt.Errorf("policy[%d] (%s): an external plugin needs sha256 (sha256sum %s)", i, p.Name, p.Path)
		case names[p.Name]:
			return fmt.Errorf("policy[%d]: name %q used twice", i, p.Name)
		}
		names[p.Name] = true
		for k, vs := range p.Sweep {
			if len(vs) == 0 {
				return fmt.Errorf("policy[%d] (%s): sweep.%s lists no values", i, p.Name, k)
			}
		}
	}
	wnames := map[string]bool{}
	for i, w := range f.Workload {
		if w.Kind != "onoff" && w.Kind != "web" {
			return fmt.Errorf("workload[%d] (%s): kind %q: want onoff or web", i, w.Name, w.Kind)
		}
		if w.Rate < 0 {
			return fmt.Errorf("workload[%d] (%s): rate %g is negative", i, w.Name, w.Rate)
		}
		switch {
		case w.AckEvery < 0 || w.AckDelay.Duration < 0:
			return fmt.Errorf("workload[%d] (%s): ack_every and ack_delay must not be negative", i, w.Name)
		case w.AckEvery == 0 && w.AckDelay.Duration > 0:
			return fmt.Errorf("workload[%d] (%s): ack_delay without ack_every: set ack_every (frames per acknowledgement, 1 for every frame)", i, w.Name)
		case w.AckEvery > 1 && w.AckDelay.Duration == 0:
			return fmt.Errorf("workload[%d] (%s): ack_every = %d needs ack_delay (the delayed-ACK timer, e.g. \"40ms\"), or a lone frame would never be acknowledged", i, w.Name, w.AckEvery)
		}
		if wnames[w.Name] {
			return fmt.Errorf("workload[%d]: name %q used twice", i, w.Name)
		}
		wnames[w.Name] = true
	}
	for _, n := range f.Network.Nodes {
		if n < 6 || n > 20000 {
			return fmt.Errorf("network.nodes: %d out of range 6..20000", n)
		}
	}
	return nil
}

// variant is one policy with one combination of its swept options.
type variant struct {
	Policy  Policy
	Label   string            // name plus the swept values
	Options map[string]string // Options with the swept values applied
}

// variants expands a policy's sweep into every combination, in a fixed
// order (options sorted by name, values in the file's order).
func (p Policy) variants() []variant {
	keys := make([]string, 0, len(p.Sweep))
	for k := range p.Sweep {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []variant{{Policy: p, Label: p.Name, Options: clone(p.Options)}}
	for _, k := range keys {
		var next []variant
		for _, v := range out {
			for _, val := range p.Sweep[k] {
				o := clone(v.Options)
				o[k] = val
				next = append(next, variant{Policy: p, Label: v.Label + " " + k + "=" + val, Options: o})
			}
		}
		out = next
	}
	return out
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Runs lists every run of the sweep in order: sizes, then workloads, then
// policies and their variants, then seeds.
func (f *File) runs() []runSpec {
	var out []runSpec
	for _, n := range f.Network.Nodes {
		for _, w := range f.Workload {
			for _, p := range f.Policy {
				for _, v := range p.variants() {
					for k := range f.Seeds {
						out = append(out, runSpec{Nodes: n, Workload: w, Variant: v, Seed: f.Seed + uint64(k)})
					}
				}
			}
		}
	}
	return out
}

type runSpec struct {
	Nodes    int
	Workload Workload
	Variant  variant
	Seed     uint64
}

// Point is one run of a sweep, for runners other than the simulator
// (the network-namespace test bed, package experiment/testbed).
type Point struct {
	Nodes    int
	Workload Workload
	Policy   Policy            // as written in the file
	Label    string            // the policy's name plus its swept values
	Options  map[string]string // the policy's options with the swept values applied
}

// Points lists every point of the sweep in the order Sweep runs them:
// sizes, then workloads, then policies and their variants; once each,
// whatever Seeds says.
func (f *File) Points() []Point {
	var specs []runSpec
	for _, s := range f.runs() {
		if s.Seed == f.Seed { // one run per point
			specs = append(specs, s)
		}
	}
	out := make([]Point, len(specs))
	for i, s := range specs {
		out[i] = Point{Nodes: s.Nodes, Workload: s.Workload, Policy: s.Variant.Policy, Label: s.Variant.Label, Options: clone(s.Variant.Options)}
	}
	return out
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
