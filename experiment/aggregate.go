package experiment

import (
	"fmt"
	"slices"
)

// point is one point of a table (a policy variant at one size and
// workload) over the seeds it ran with.
type point struct {
	Label string
	Runs  []Run
}

// byPoint groups one table's runs by policy label, in order.
func byPoint(runs []Run) []point {
	var out []point
	at := map[string]int{}
	for _, r := range runs {
		i, ok := at[r.Policy]
		if !ok {
			i = len(out)
			at[r.Policy] = i
			out = append(out, point{Label: r.Policy})
		}
		out[i].Runs = append(out[i].Runs, r)
	}
	return out
}

// spread is a quantity's median and range over a point's seeds.
type spread struct{ Med, Lo, Hi float64 }

func (p point) spread(f func(Run) float64) spread {
	v := make([]float64, len(p.Runs))
	for i, r := range p.Runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return spread{Med: med, Lo: v[0], Hi: v[n-1]}
}

// cell formats a spread for report.md: the median, and its range in
// brackets when the point ran with several seeds.
func (s spread) cell(verb string, seeds int) string {
	m := fmt.Sprintf(verb, s.Med)
	if seeds < 2 {
		return m
	}
	return fmt.Sprintf("%s ["+verb+"–"+verb+"]", m, s.Lo, s.Hi)
}
