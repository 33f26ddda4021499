// Package redteam runs hostile nodes, built on the real core, against a
// local in-memory network and reports what each attack gained.
//
// Every attack answers one question from the protocol review (issue 10 and
// later ones): can a participant who deviates from the protocol learn, tag,
// steer or exhaust more than a participant who only follows it and watches?
// An attack therefore measures two numbers under one metric: what the
// hostile node achieved, and what a passive participant in the same place
// would achieve (its baseline). The verdict is "holds" when the attacker
// does no better than the baseline allows (within the attack's stated
// tolerance), and "BROKEN" otherwise.
//
// `tarzan redteam` runs the registry and prints the table; `go test
// ./redteam` runs the same attacks at a size fit for CI, and fails on any
// BROKEN verdict. New attacks register in an init function of their own
// file.
package redteam

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Size scales an attack: Quick is what the test suite runs; Full is what
// the command runs by default and what closing notes quote.
type Size int

const (
	Quick Size = iota
	Full
)

func (s Size) String() string {
	if s == Quick {
		return "quick"
	}
	return "full"
}

// Attack is one hostile strategy against one property.
type Attack struct {
	Name     string // short, unique, used by --attack
	Finding  string // the property attacked, in the review's words
	Severity string // critical, high, medium, low
	// Run mounts the attack and measures. It must stop everything it
	// started before returning, bound its load in count and time, and send
	// traffic only on the in-memory network.
	Run func(ctx context.Context, size Size) (Result, error)
}

// Result is what an attack measured.
type Result struct {
	Metric    string  // what Attacker and Passive measure, with its unit
	Attacker  float64 // what the hostile node achieved
	Passive   float64 // what a passive participant in its place achieves
	Tolerance float64 // how far above Passive Attacker may be and still count as no gain
	// LowerIsGain is set for metrics where the attacker wins by lowering
	// the value (e.g. the share of an honest tunnel's pings that return).
	LowerIsGain bool
	Detail      string // one line: how it was measured, counters that moved
	// Failed, when set, says why the property failed on a second count
	// the metric does not carry (an honest tunnel slowed, memory grew).
	Failed string
}

// Gained reports whether the attacker did better than the baseline allows.
func (r Result) Gained() bool {
	if math.IsNaN(r.Attacker) || r.Failed != "" {
		return true
	}
	if r.LowerIsGain {
		return r.Attacker < r.Passive-r.Tolerance
	}
	return r.Attacker > r.Passive+r.Tolerance
}

// Verdict is "holds" or "BROKEN".
func (r Result) Verdict() string {
	if r.Gained() {
		return "BROKEN"
	}
	return "holds"
}

var registry []Attack

// register adds an attack; names must be unique.
func register(a Attack) {
	for _, b := range registry {
		if b.Name == a.Name {
			panic("redteam: duplicate attack " + a.Name)
		}
	}
	registry = append(registry, a)
}

// Attacks lists the registered attacks by name.
func Attacks() []Attack {
	out := append([]Attack(nil), registry...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Outcome is one attack's run.
type Outcome struct {
	Attack  Attack
	Result  Result
	Err     error
	Elapsed time.Duration
}

// Broken reports whether the property failed (an attack gained or could
// not be run at all: an attack that errors has not shown the property holds).
func (o Outcome) Broken() bool { return o.Err != nil || o.Result.Gained() }

// Select returns the attacks whose names are listed (all when names is
// empty), or an error naming an unknown one.
func Select(names []string) ([]Attack, error) {
	all := Attacks()
	if len(names) == 0 {
		return all, nil
	}
	var out []Attack
	for _, name := range names {
		found := false
		for _, a := range all {
			if a.Name == name {
				out = append(out, a)
				found = true
			}
		}
		if !found {
			var known []string
			for _, a := range all {
				known = append(known, a.Name)
			}
			return nil, fmt.Errorf("no attack %q (known: %s)", name, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// RunAll runs attacks one after another; progress, if not nil, hears of
// each as it starts and ends.
func RunAll(ctx context.Context, attacks []Attack, size Size, progress func(string)) []Outcome {
	var out []Outcome
	for i, a := range attacks {
		if progress != nil {
			progress(fmt.Sprintf("[%d/%d] %s: %s", i+1, len(attacks), a.Name, a.Finding))
		}
		start := time.Now()
		r, err := a.Run(ctx, size)
		o := Outcome{Attack: a, Result: r, Err: err, Elapsed: time.Since(start)}
		if progress != nil {
			progress(fmt.Sprintf("      %s in %s", verdictOf(o), o.Elapsed.Round(time.Millisecond)))
		}
		out = append(out, o)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

func verdictOf(o Outcome) string {
	if o.Err != nil {
		return "ERROR: " + o.Err.Error()
	}
	return o.Result.Verdict()
}

// WriteTable prints outcomes as an aligned table.
func WriteTable(w io.Writer, outs []Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\tseverity\tmetric\tattacker\tpassive\tverdict\tdetail")
	for _, o := range outs {
		r := o.Result
		if o.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tERROR\t%v\n", o.Attack.Name, o.Attack.Severity, o.Err)
			continue
		}
		detail := r.Detail
		if r.Failed != "" {
			detail = r.Failed + "; " + detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Attack.Name, o.Attack.Severity, r.Metric,
			num(r.Attacker), num(r.Passive), r.Verdict(), detail)
	}
	return tw.Flush()
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
