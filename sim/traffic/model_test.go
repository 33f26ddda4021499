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
		{Nodes: 20, Workload: Workload{Kind: "onoff", AckEvery: 2}},
		{Nodes: 20, Workload: Workload{Kind: "onoff", AckDelay: time.Millisecond}},
		{Nodes: 20, Workload: Workload{Kind: "onoff", AckEvery: -1}},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// acksCfg is one tunnel without cover, so that the exit's link back to
// the last relay carries nothing but acknowledgements.
func acksCfg(every int, delay time.Duration) Config {
	cfg := small()
	cfg.Initiators = 1
	cfg.Workload.AckEvery, cfg.Workload.AckDelay = every, delay
	return cfg
}

// linkLog records, for one run, what each directed link sent (departure
// times) and when each frame arrived.
type linkLog struct{ sent, arrived map[[2]int][]time.Duration }

func runLogged(t *testing.T, cfg Config) (*Result, linkLog) {
	t.Helper()
	lg := linkLog{map[[2]int][]time.Duration{}, map[[2]int][]time.Duration{}}
	cfg.Observe = func(s, a time.Duration, src, dst int) {
		k := [2]int{src, dst}
		lg.sent[k] = append(lg.sent[k], s)
		lg.arrived[k] = append(lg.arrived[k], a)
	}
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, lg
}

// stepOf is the grid step in which the model handles an arrival at a.
func stepOf(a time.Duration) time.Duration { return (a + Grid - 1) / Grid * Grid }

// With ack_every 1 the exit sends one frame back for every data frame it
// hands to the server, in the grid step that frame arrived in; the
// acknowledgements reach the initiator, are data on the wire, and are
// neither cleartext at the exit nor goodput.
func TestAcksEveryFrame(t *testing.T) {
	cfg := acksCfg(1, 0)
	r, lg := runLogged(t, cfg)
	f := r.Flows[0]
	exit, relay := f.Path[len(f.Path)-1], f.Path[len(f.Path)-2]
	in := lg.arrived[[2]int{relay, exit}] // data for the exit, in order
	back := lg.sent[[2]int{exit, relay}]  // its acknowledgements
	if len(in) < 100 {
		t.Fatalf("only %d frames reached the exit", len(in))
	}
	// Frames still in flight at the end have no acknowledgement yet.
	if len(back) > len(in) || len(back) < len(in)-5 {
		t.Fatalf("%d frames reached the exit, it sent %d back: want one each", len(in), len(back))
	}
	for k := range back {
		if want := stepOf(in[k]); back[k] != want {
			t.Fatalf("acknowledgement %d left at %v, want %v (the step its frame arrived at %v)", k, back[k], want, in[k])
		}
	}
	if len(f.Up) != len(in) || len(f.Down) != 0 {
		t.Errorf("exit's cleartext: %d up, %d down, want %d up and nothing down (acknowledgements are not cleartext)", len(f.Up), len(f.Down), len(in))
	}
	// Each acknowledgement crosses every hop back to the initiator.
	if hop1 := lg.sent[[2]int{f.Path[0], f.Initiator}]; len(hop1) < len(back)-5 || len(hop1) > len(back) {
		t.Errorf("%d acknowledgements left the exit, %d reached the initiator's link", len(back), len(hop1))
	}
	if r.Frames != r.DataFrames || r.Acks == 0 || r.Acks > uint64(len(back)) {
		t.Errorf("frames %d, data %d, acks %d (%d on the wire): acknowledgements are data frames", r.Frames, r.DataFrames, r.Acks, len(back))
	}
	if got, want := r.Delivered, uint64(len(in))*PayloadBytes; got > want {
		t.Errorf("delivered %d bytes, more than the %d frames the exit got carry: acknowledgements counted as goodput", got, len(in))
	}
}

// With ack_every 2 and a delayed-ACK timer, one frame goes back per two
// received, and a lone frame is acknowledged when the timer runs out:
// no frame waits longer than the timer, and every acknowledgement leaves
// when a frame arrives or when a timer ends.
func TestAcksDelayed(t *testing.T) {
	const delay = 40 * time.Millisecond
	cfg := acksCfg(2, delay)
	r, lg := runLogged(t, cfg)
	f := r.Flows[0]
	exit, relay := f.Path[len(f.Path)-1], f.Path[len(f.Path)-2]
	in := lg.arrived[[2]int{relay, exit}]
	back := lg.sent[[2]int{exit, relay}]
	if len(back) < len(in)/2 || len(back) >= len(in)-5 {
		t.Fatalf("%d frames reached the exit, %d acknowledgements: want between half and all but the lone ones", len(in), len(back))
	}
	steps := map[time.Duration]bool{}
	for _, a := range in {
		steps[stepOf(a)] = true
		steps[stepOf(a+delay)] = true
	}
	for _, b := range back {
		if !steps[b] {
			t.Fatalf("acknowledgement at %v: neither when a frame arrived nor when a timer ran out", b)
		}
	}
	j := 0
	for _, a := range in[:len(in)-5] {
		for j < len(back) && back[j] < stepOf(a) {
			j++
		}
		if j == len(back) || back[j] > stepOf(a+delay) {
			t.Fatalf("frame that arrived at %v not acknowledged within %v", a, delay)
		}
	}
}

// In a web workload the initiator acknowledges the answers: its
// acknowledgements travel forward and end at the exit, which does not
// hand them to the server.
func TestAcksWeb(t *testing.T) {
	cfg := acksCfg(1, 0)
	cfg.Workload = Workload{Kind: "web", Rate: 5, Size: 10, AckEvery: 1}
	r, lg := runLogged(t, cfg)
	f := r.Flows[0]
	exit, relay := f.Path[len(f.Path)-1], f.Path[len(f.Path)-2]
	down := lg.arrived[[2]int{f.Path[0], f.Initiator}] // answers and the exit's acks
	fwd := lg.arrived[[2]int{relay, exit}]             // requests and the initiator's acks
	if len(f.Up) == 0 || len(f.Down) < 5*len(f.Up) {
		t.Fatalf("%d requests, %d answers", len(f.Up), len(f.Down))
	}
	// Forward: every request and one ack per answer frame (less those
	// in flight); the exit hands only the requests to the server.
	if extra := len(fwd) - len(f.Up); extra < len(f.Down)-20 || extra > len(f.Down) {
		t.Errorf("%d frames reached the exit for %d requests and %d answers: want a request each plus an ack per answer", len(fwd), len(f.Up), len(f.Down))
	}
	if extra := len(down) - len(f.Down); extra < len(f.Up)-5 || extra > len(f.Up) {
		t.Errorf("%d frames reached the initiator for %d answers and %d requests: want the answers plus an ack per request", len(down), len(f.Down), len(f.Up))
	}
}

// Acknowledgements keep a run reproducible.
func TestAcksDeterministic(t *testing.T) {
	run := func() (*Result, linkLog) {
		cfg := small()
		cfg.Workload.AckEvery, cfg.Workload.AckDelay = 2, 40*time.Millisecond
		cfg.Policy = func(int) (cover.Policy, error) { return constant.New(map[string]string{"rate": "20"}) }
		return runLogged(t, cfg)
	}
	a, la := run()
	b, lb := run()
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(la, lb) {
		t.Fatal("two runs with acknowledgements and the same seed differ")
	}
	if a.Acks == 0 {
		t.Error("no acknowledgements sent")
	}
}
