package traffic

import (
	"reflect"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/cover/constant"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

func small() Config {
	return Config{Nodes: 40, Initiators: 5, Seed: 3, Warmup: time.Second, Duration: 10 * time.Second,
		Workload: Workload{Kind: "onoff", Rate: 50, On: time.Second, Off: time.Second}}
}

// Without cover every frame on the wire is data, every packet arrives
// after at least one link latency per hop, and what the exits hand to
// servers is what the initiators sent.
func TestNoCover(t *testing.T) {
	cfg := small()
	var observed uint64
	cfg.Observe = func(t, _ time.Duration, src, dst int) { observed++ }
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.DataFrames == 0 || r.Frames != r.DataFrames {
		t.Fatalf("frames %d, data frames %d: without cover they must be equal and non-zero", r.Frames, r.DataFrames)
	}
	if observed < r.Frames {
		t.Errorf("observer saw %d frames, %d were sent while measuring", observed, r.Frames)
	}
	if len(r.Flows) != cfg.Initiators {
		t.Fatalf("%d flows, want %d", len(r.Flows), cfg.Initiators)
	}
	up := 0
	for _, f := range r.Flows {
		if len(f.Path) != 3 {
			t.Errorf("path %v: want 3 hops", f.Path)
		}
		up += len(f.Up)
	}
	// Frames in flight at the end have not arrived yet: allow a few.
	if sent := int(r.Offered) - int(r.Dropped); up > sent || up < sent-cfg.Initiators*10 {
		t.Errorf("servers got %d packets, initiators sent %d", up, sent)
	}
	for _, l := range r.Latencies {
		if l < 3*20*time.Millisecond {
			t.Fatalf("latency %v below three link latencies", l)
		}
	}
}

// The same seed gives the same run, frame for frame.
func TestDeterministic(t *testing.T) {
	run := func() (*Result, []int) {
		cfg := small()
		cfg.Policy = func(int) (cover.Policy, error) { return constant.New(map[string]string{"rate": "20"}) }
		var trace []int
		cfg.Observe = func(t, at time.Duration, src, dst int) {
			trace = append(trace, int(t/time.Millisecond), int(at), src, dst)
		}
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r, trace
	}
	a, ta := run()
	b, tb := run()
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ta, tb) {
		t.Fatal("two runs with the same seed differ")
	}
	if a.Frames <= a.DataFrames {
		t.Errorf("constant cover sent no padding: %d frames, %d data", a.Frames, a.DataFrames)
	}
}

// Constant cover makes every link send its rate whatever it carries.
func TestConstantCoverRate(t *testing.T) {
	cfg := small()
	cfg.Workload.Rate = 0
	cfg.Policy = func(int) (cover.Policy, error) { return constant.New(map[string]string{"rate": "20"}) }
	perLink := map[[2]int]int{}
	cfg.Observe = func(t, _ time.Duration, src, dst int) {
		if t >= cfg.Warmup {
			perLink[[2]int{src, dst}]++
		}
	}
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.DataFrames != 0 {
		t.Fatalf("%d data frames with no workload", r.DataFrames)
	}
	want := 20 * cfg.Duration.Seconds()
	for k, n := range perLink {
		if float64(n) < 0.95*want || float64(n) > 1.05*want {
			t.Errorf("link %v sent %d frames in %v, want about %.0f", k, n, cfg.Duration, want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Nodes: 3},
		{Nodes: 20, Initiators: 30},
		{Nodes: 20, Workload: Workload{Kind: "bulk"}},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
