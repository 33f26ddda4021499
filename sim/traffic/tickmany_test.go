package traffic

import (
	"reflect"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/cover/constant"
	"github.com/tarzan-net/tarzan/plugins/cover/poisson"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Config.TickMany consults the policies due in one grid step together;
// the run is frame for frame the one with a Tick each, also with a
// policy that draws Poisson gaps (the model's randomness) and one that
// fails now and then.
func TestTickManySameRun(t *testing.T) {
	for _, name := range []string{"constant", "poisson", "failing"} {
		run := func(batched bool) (*Result, []int, int) {
			cfg := small()
			cfg.Policy = func(i int) (cover.Policy, error) {
				switch name {
				case "poisson":
					return poisson.New(map[string]string{"rate": "30"})
				case "failing":
					p, err := constant.New(map[string]string{"rate": "20"})
					return &failEvery{Policy: p, n: 3 + i%4}, err
				}
				return constant.New(map[string]string{"rate": "20"})
			}
			calls, most := 0, 0
			if batched {
				cfg.TickMany = func(now time.Time, ps []cover.Policy, links [][]cover.LinkStats) ([][]cover.Target, []error) {
					calls++
					most = max(most, len(ps))
					out := make([][]cover.Target, len(ps))
					var errs []error
					// Answer in reverse order: the policies are independent.
					for k := len(ps) - 1; k >= 0; k-- {
						ts, err := ps[k].Tick(now, links[k])
						out[k] = ts
						if err != nil {
							if errs == nil {
								errs = make([]error, len(ps))
							}
							errs[k] = err
						}
					}
					return out, errs
				}
			}
			var trace []int
			cfg.Observe = func(t, at time.Duration, src, dst int) {
				trace = append(trace, int(t), int(at), src, dst)
			}
			r, err := Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if batched && (calls == 0 || most < 2) {
				t.Errorf("%s: %d TickMany calls, at most %d policies each: want batches", name, calls, most)
			}
			return r, trace, calls
		}
		a, ta, _ := run(false)
		b, tb, _ := run(true)
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ta, tb) {
			t.Errorf("%s: the run with TickMany differs from the one with a Tick each", name)
		}
	}
}

// failEvery fails every n-th tick.
type failEvery struct {
	cover.Policy
	n, ticks int
}

func (f *failEvery) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	f.ticks++
	if f.ticks%f.n == 0 {
		return nil, errTick
	}
	return f.Policy.Tick(now, links)
}

var errTick = errorString("tick failed")

type errorString string

func (e errorString) Error() string { return string(e) }
