package covertest

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
)

// latePolicy thinks for 2 s on every tick of more than a few links, as a
// policy that asks a slow service would.
type latePolicy struct{ *Policy }

func (p latePolicy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	if len(links) > 3 {
		time.Sleep(2 * time.Second)
	}
	return p.Policy.Tick(now, links)
}

// bitsPolicy answers in bits per second where frames per second are due.
type bitsPolicy struct{ *Policy }

func (p bitsPolicy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	ts, err := p.Policy.Tick(now, links)
	for i := range ts {
		ts[i].Rate *= 1408 * 8 * 1000
	}
	return ts, err
}

// stalePolicy keeps a target per link it has ever seen and returns all of
// them: right while links only come, wrong once one goes.
type stalePolicy struct {
	*Policy
	targets []cover.Target
}

func (p *stalePolicy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	ts, err := p.Policy.Tick(now, links)
	if len(ts) > len(p.targets) {
		p.targets = append(p.targets, ts[len(p.targets):]...)
	}
	return slices.Clone(p.targets), err
}

// spinPolicy asks to be ticked every microsecond.
type spinPolicy struct{ *Policy }

func (spinPolicy) Interval() time.Duration { return time.Microsecond }

var brokenPolicies = map[string]struct {
	make  func() cover.Policy
	fails map[string]string
}{
	"late": {func() cover.Policy { return latePolicy{New(10*time.Millisecond, 5)} },
		map[string]string{"answers in time": "did not answer within"}},
	"bits": {func() cover.Policy { return bitsPolicy{New(10*time.Millisecond, 5)} },
		map[string]string{"targets": "frames/s", "links come and go": "frames/s"}},
	"stale": {func() cover.Policy { return &stalePolicy{Policy: New(10*time.Millisecond, 5)} },
		map[string]string{"links come and go": "whatever the last tick had"}},
	"spin": {func() cover.Policy { return spinPolicy{New(10*time.Millisecond, 5)} },
		map[string]string{"identity": "want within"}},
}

const brokenEnv = "COVERTEST_BROKEN"

// TestBrokenChild runs the suite on the policy named in $COVERTEST_BROKEN,
// for TestBrokenPoliciesFail.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestBrokenPoliciesFail")
	}
	Run(t, func(*testing.T) cover.Policy { return brokenPolicies[name].make() })
}

// TestBrokenPoliciesFail runs the suite on each broken policy in a child
// process and requires it to fail exactly the checks it breaks, saying
// why.
func TestBrokenPoliciesFail(t *testing.T) {
	for name, b := range brokenPolicies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := make([]string, 0, len(b.fails))
			for c := range b.fails {
				want = append(want, c)
			}
			slices.Sort(want)
			// "answers in time" is the one check bounded by the wall clock
			// (1 s for a tick of 1,024 links). On a machine loaded far past
			// its cores a policy that does not break it can still miss it,
			// so a run whose only extra failure is that check is run again
			// (at most three runs); every other mismatch fails at once.
			var got []string
			var out []byte
			for attempt := 0; attempt < 3; attempt++ {
				got, out = plugintest.RunBrokenChild(t, brokenEnv, name, 2*time.Minute)
				extra := slices.DeleteFunc(slices.Clone(got), func(c string) bool { return slices.Contains(want, c) })
				if !(len(extra) == 1 && extra[0] == "answers in time") {
					break
				}
				t.Logf("run %d: the %s policy also missed the wall-clock bound of \"answers in time\"; running it again", attempt+1, name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("the %s policy failed %q; want exactly %q\n%s", name, got, want, out)
			}
			for c, phrase := range b.fails {
				if !strings.Contains(string(out), phrase) {
					t.Errorf("the %s policy failed %q without saying %q\n%s", name, c, phrase, out)
				}
			}
		})
	}
}
