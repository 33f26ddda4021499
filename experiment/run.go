package experiment

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sim/adversary"
	"github.com/tarzan-net/tarzan/sim/traffic"
)

// Results is results.json: everything a sweep measured. It holds no wall
// clock times, so the same file and seed give the same bytes.
type Results struct {
	Name   string   `json:"name"`
	Seed   uint64   `json:"seed"`
	Mode   string   `json:"mode"` // "simulator" or "testbed"
	Attack Attack   `json:"attack"`
	Runs   []Run    `json:"runs"`
	Notes  []string `json:"notes,omitempty"`
}

// Run is one point of the sweep.
type Run struct {
	Policy   string            `json:"policy"`  // label: name and swept values
	Plugin   string            `json:"plugin"`  // shipped name or external path
	Options  map[string]string `json:"options"` // as passed to the policy
	Workload string            `json:"workload"`
	Nodes    int               `json:"nodes"`
	Flows    int               `json:"flows"`

	// What the adversary achieved.
	Correlation adversary.Summary `json:"flow_correlation"`
	Originator  adversary.Summary `json:"originator_detection"`

	// What it cost.
	Overhead    float64 `json:"overhead"`    // all frames ÷ data frames
	Frames      uint64  `json:"frames"`      // over the flow period
	DataFrames  uint64  `json:"data_frames"` // idem
	Utilisation float64 `json:"utilisation"` // data on busy links ÷ capacity
	LatencyP50  float64 `json:"latency_p50_ms"`
	LatencyP99  float64 `json:"latency_p99_ms"`
	Goodput     float64 `json:"goodput_bytes_per_s"`
	Dropped     uint64  `json:"dropped_frames"`
}

// Options for Sweep.
type Options struct {
	Progress io.Writer    // one line per run (nil: none)
	Logger   *slog.Logger // plugin logs (nil: discarded)
}

// Sweep runs every point of f in the simulator, in order.
func Sweep(f *File, o Options) (*Results, error) {
	res := &Results{Name: f.Name, Seed: f.Seed, Mode: "simulator", Attack: f.Attack}
	specs := f.runs()
	// Refuse bad options and what the model cannot do before the first
	// run, not in the middle of the sweep.
	for _, p := range f.Policy {
		if p.Path != "" {
			continue // an external plugin is checked when its first run starts it
		}
		for _, v := range p.variants() {
			if _, err := policyFactory(v, nil); err != nil {
				return res, err
			}
		}
	}
	for i, s := range specs {
		began := time.Now()
		r, err := runOne(f, s, o)
		if err != nil {
			return res, fmt.Errorf("run %d/%d (%s, %s, %d nodes): %w", i+1, len(specs), s.Variant.Label, s.Workload.Name, s.Nodes, err)
		}
		res.Runs = append(res.Runs, *r)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "experiment %d/%d  %-28s %-12s %4d nodes  corr top1 %.2f  H %.2f bits  overhead %.2f  p50 %.0f ms  (%.1fs)\n",
				i+1, len(specs), s.Variant.Label, s.Workload.Name, s.Nodes, r.Correlation.Top1, r.Correlation.Entropy, r.Overhead, r.LatencyP50, time.Since(began).Seconds())
		}
	}
	return res, nil
}

// policyFactory makes one policy per node: a shipped one in process, or
// an external plugin executable (one child process per node, like real
// nodes; checked against its SHA-256 before every start).
func policyFactory(v variant, log *slog.Logger) (func(int) (cover.Policy, error), error) {
	p := v.Policy
	if p.Path == "" {
		fac, ok := builtin.Covers[p.Plugin]
		if !ok {
			return nil, fmt.Errorf("cover policy %q is not shipped (shipped: %v); give an external one with path and sha256", p.Plugin, builtin.Names(builtin.KindCover))
		}
		// Fail on bad options once, before starting a network.
		probe, err := fac(v.Options)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", v.Label, err)
		}
		err = modelCanRun(v, probe)
		probe.Close()
		if err != nil {
			return nil, err
		}
		return func(int) (cover.Policy, error) { return fac(v.Options) }, nil
	}
	l := pluginkit.Launcher{Path: p.Path, Checksum: p.SHA256, Logger: log, Name: p.Name}
	return func(int) (cover.Policy, error) {
		pol, err := coverplugin.Launch(l, v.Options)
		if err != nil {
			return nil, err
		}
		if err := modelCanRun(v, pol); err != nil {
			pol.Close()
			return nil, err
		}
		return pol, nil
	}, nil
}

// modelCanRun refuses a policy that asks for what the traffic model does
// not simulate, rather than leave it out of the results unsaid. The model
// (sim/traffic) shapes links with the policy's targets but sends no loop
// cover (cover.Looper): real nodes send loops as tunnel cells, the model
// has no loops, so a loop_rate sweep would measure the same network at
// every value.
func modelCanRun(v variant, p cover.Policy) error {
	l, ok := p.(cover.Looper)
	if !ok {
		return nil
	}
	if r := l.Loops().Rate; r != 0 {
		opt := "its options"
		if _, set := v.Options["loop_rate"]; set {
			opt = fmt.Sprintf("option loop_rate = %q", v.Options["loop_rate"])
		}
		return fmt.Errorf("policy %s: %s asks for loop cover (%g loops per second per node), which the simulator's traffic model does not send: its runs would leave the loops out and every loop_rate would measure the same network; drop loop_rate (or set it to 0) for the simulator, or run the sweep on real nodes with --testbed", v.Label, opt, r)
	}
	return nil
}

func runOne(f *File, s runSpec, o Options) (*Run, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	policy, err := policyFactory(s.Variant, log)
	if err != nil {
		return nil, err
	}
	n := f.Network
	bin := f.Attack.Bin.Duration
	b := adversary.NewBuilder(s.Nodes, bin)
	cfg := traffic.Config{
		Nodes: s.Nodes, K: n.K, Hops: n.Hops, Domains: n.Domains, Seed: f.Seed,
		Latency: n.Latency.Duration, Jitter: n.Jitter.Duration, Capacity: n.Capacity,
		Warmup: n.Warmup.Duration, Duration: n.Duration.Duration, Initiators: n.Initiators,
		Workload: traffic.Workload{
			Kind: s.Workload.Kind, Rate: s.Workload.Rate, On: s.Workload.On.Duration,
			Off: s.Workload.Off.Duration, Size: s.Workload.Size,
			AckEvery: s.Workload.AckEvery, AckDelay: s.Workload.AckDelay.Duration,
		},
		Policy: policy,
		Observe: func(sent, arrived time.Duration, src, dst int) {
			b.Add(src, dst, sent, arrived, 1408)
		},
	}
	tr, err := traffic.Run(cfg)
	if err != nil {
		return nil, err
	}
	trace := b.Trace()
	flows := make([]adversary.Flow, len(tr.Flows))
	for i, fl := range tr.Flows {
		af := adversary.Flow{Initiator: fl.Initiator, Exit: fl.Path[len(fl.Path)-1], Start: tr.Warmup, End: tr.Warmup + tr.Duration}
		for _, p := range fl.Up {
			af.AddUp(bin, p.T, p.Bytes)
		}
		for _, p := range fl.Down {
			af.AddDown(bin, p.T, p.Bytes)
		}
		flows[i] = af
	}
	ao := adversary.Options{Window: f.Attack.Window.Duration, MaxLag: f.Attack.MaxLag.Duration, Horizon: f.Attack.Horizon.Duration}
	truth := adversary.Truth(flows)
	lat := adversary.Latencies(tr.Latencies)
	r := &Run{
		Policy: s.Variant.Label, Plugin: pluginName(s.Variant.Policy), Options: s.Variant.Options,
		Workload: s.Workload.Name, Nodes: s.Nodes, Flows: len(flows),
		Correlation: adversary.Evaluate(adversary.CorrelateFlows(trace, flows, ao), truth),
		Originator:  adversary.Evaluate(adversary.DetectOriginators(trace, flows, ao), truth),
		Overhead:    adversary.Overhead(tr.Frames, tr.DataFrames),
		Frames:      tr.Frames, DataFrames: tr.DataFrames, Utilisation: tr.Utilisation,
		LatencyP50: ms(lat.P50), LatencyP99: ms(lat.P99),
		Goodput: adversary.Goodput(tr.Delivered, tr.Duration),
		Dropped: tr.Dropped,
	}
	return r, nil
}

func pluginName(p Policy) string {
	if p.Path != "" {
		return p.Path
	}
	return p.Plugin
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
