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

	// What it cost. Loop cells (Loops) are cover from the workload's
	// point of view: in Frames, not in DataFrames, so they raise the
	// overhead; and not in the latencies, goodput or drops.
	Overhead    float64 `json:"overhead"`    // all frames ÷ workload data frames
	Frames      uint64  `json:"frames"`      // over the flow period
	DataFrames  uint64  `json:"data_frames"` // idem: the workload's data and acknowledgements
	Utilisation float64 `json:"utilisation"` // workload data on busy links ÷ capacity
	LatencyP50  float64 `json:"latency_p50_ms"`
	LatencyP99  float64 `json:"latency_p99_ms"`
	Goodput     float64 `json:"goodput_bytes_per_s"`
	Dropped     uint64  `json:"dropped_frames"`

	// Loops is what the nodes' loop cover did, when the policy asked
	// for loops (cover.Looper with a rate > 0); absent otherwise.
	Loops *Loops `json:"loops,omitempty"`
}

// Loops is a run's loop cover over the flow period (traffic.LoopResult).
type Loops struct {
	Nodes    int     `json:"nodes"`    // nodes that sent loops
	Frames   uint64  `json:"frames"`   // link frames that carried a loop cell, out or back
	Sent     uint64  `json:"sent"`     // loops sent
	Returned uint64  `json:"returned"` // of them, back within the loop timeout (5 s)
	Lost     uint64  `json:"lost"`     // refused by a full queue, or not back within the timeout
	RTTP50   float64 `json:"rtt_p50_ms"`
	RTTP99   float64 `json:"rtt_p99_ms"`
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
	// Refuse bad options before the first run, not in the middle of the
	// sweep.
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
			loops := ""
			if r.Loops != nil {
				loops = fmt.Sprintf("  loops %d/%d back, rtt %.0f ms", r.Loops.Returned, r.Loops.Sent, r.Loops.RTTP50)
			}
			fmt.Fprintf(o.Progress, "experiment %d/%d  %-28s %-12s %4d nodes  corr top1 %.2f  H %.2f bits  overhead %.2f  p50 %.0f ms%s  (%.1fs)\n",
				i+1, len(specs), s.Variant.Label, s.Workload.Name, s.Nodes, r.Correlation.Top1, r.Correlation.Entropy, r.Overhead, r.LatencyP50, loops, time.Since(began).Seconds())
		}
	}
	return res, nil
}

// policyFactory makes one policy per node: a shipped one in process, or
// an external plugin executable (one child process per node, like real
// nodes; checked against its SHA-256 before every start). Either may ask
// for loop cover (cover.Looper; out of process the rate comes back in
// the plugin's ConfigureResponse), which the traffic model sends.
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
		probe.Close()
		return func(int) (cover.Policy, error) { return fac(v.Options) }, nil
	}
	l := pluginkit.Launcher{Path: p.Path, Checksum: p.SHA256, Logger: log, Name: p.Name}
	return func(int) (cover.Policy, error) { return coverplugin.Launch(l, v.Options) }, nil
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
	if lp := tr.Loops; lp.Nodes > 0 {
		rtt := adversary.Latencies(lp.RTTs)
		r.Loops = &Loops{Nodes: lp.Nodes, Frames: lp.Frames, Sent: lp.Sent, Returned: lp.Returned, Lost: lp.Lost,
			RTTP50: ms(rtt.P50), RTTP99: ms(rtt.P99)}
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
