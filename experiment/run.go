package experiment

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
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
	Name   string    `json:"name"`
	Seed   uint64    `json:"seed"`  // the first run's; the others count up from it
	Seeds  int       `json:"seeds"` // runs per point
	Mode   string    `json:"mode"`  // "simulator" or "testbed"
	Attack Attack    `json:"attack"`
	Runs   []Run     `json:"runs"`
	Failed []Failure `json:"failed,omitempty"` // runs that did not complete
	Notes  []string  `json:"notes,omitempty"`
}

// Run is one point of the sweep.
type Run struct {
	Policy   string            `json:"policy"`  // label: name and swept values
	Plugin   string            `json:"plugin"`  // shipped name or external path
	Options  map[string]string `json:"options"` // as passed to the policy
	Workload string            `json:"workload"`
	Nodes    int               `json:"nodes"`
	Seed     uint64            `json:"seed"`
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
	// TickErrors counts policy ticks that failed (e.g. while a plugin
	// child restarted): those nodes' links went unshaped until their
	// next tick. Absent when none did.
	TickErrors uint64 `json:"tick_errors,omitempty"`

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
	Progress io.Writer    // one line per run, failures at once (nil: none)
	Logger   *slog.Logger // plugin logs (nil: discarded)
}

// Sweep runs every point of f in the simulator, in order. A run that
// fails is printed at once, recorded in Results.Failed with its plugins'
// last log lines, and the sweep goes on; Sweep then returns the results
// with a *FailedError. Policies are checked before the first run (a
// shipped one's options; an external one is started and its options
// tried), so a bad policy fails the sweep at once, not at its turn.
func Sweep(f *File, o Options) (*Results, error) {
	res := &Results{Name: f.Name, Seed: f.Seed, Seeds: f.Seeds, Mode: "simulator", Attack: f.Attack}
	specs := f.runs()
	if err := preflight(f, o); err != nil {
		return res, err
	}
	for i, s := range specs {
		began := time.Now()
		log, tail := newTail(o.Logger)
		r, err := runOne(f, s, log)
		if err != nil {
			fl := Failure{Run: i + 1, Of: len(specs), Policy: s.Variant.Label, Plugin: pluginName(s.Variant.Policy),
				Workload: s.Workload.Name, Nodes: s.Nodes, Seed: s.Seed, Error: err.Error(), LogTail: tail.get()}
			res.Failed = append(res.Failed, fl)
			PrintFailure(o.Progress, fl)
			continue
		}
		res.Runs = append(res.Runs, *r)
		if o.Progress != nil {
			loops := ""
			if r.Loops != nil {
				loops = fmt.Sprintf("  loops %d/%d back, rtt %.0f ms", r.Loops.Returned, r.Loops.Sent, r.Loops.RTTP50)
			}
			seed := ""
			if f.Seeds > 1 {
				seed = fmt.Sprintf("  seed %d", s.Seed)
			}
			if r.TickErrors > 0 {
				loops += fmt.Sprintf("  %d FAILED TICKS", r.TickErrors)
			}
			fmt.Fprintf(o.Progress, "experiment %d/%d  %-28s %-12s %4d nodes%s  corr top1 %.2f  H %.2f bits  overhead %.2f  p50 %.0f ms%s  (%.1fs)\n",
				i+1, len(specs), s.Variant.Label, s.Workload.Name, s.Nodes, seed, r.Correlation.Top1, r.Correlation.Entropy, r.Overhead, r.LatencyP50, loops, time.Since(began).Seconds())
		}
	}
	if len(res.Failed) > 0 {
		return res, &FailedError{Failed: len(res.Failed), Runs: len(specs)}
	}
	return res, nil
}

// preflight refuses bad policies before the first run: unknown shipped
// names and bad options, and external plugins that do not start (path,
// checksum) or refuse their options. The error carries an external
// plugin's last log lines.
func preflight(f *File, o Options) error {
	for _, p := range f.Policy {
		for _, v := range p.variants() {
			log, tail := newTail(o.Logger)
			pols, err := policyFactory(v, log)
			if err == nil && p.Path != "" {
				var pol cover.Policy
				if pol, err = pols.New(0); err == nil {
					pol.Close()
				} else {
					err = fmt.Errorf("policy %s: %w", v.Label, err)
				}
			}
			if pols != nil {
				pols.Close()
			}
			if err != nil {
				if lines := tail.get(); len(lines) > 0 {
					err = fmt.Errorf("%w\n    | %s", err, strings.Join(lines, "\n    | "))
				}
				return err
			}
		}
	}
	return nil
}

// policies makes the nodes' policies of one run: a shipped one in
// process, or an external plugin executable, checked against its SHA-256
// before every start. An external plugin serves every node of the run
// from one child process (one session each, coverplugin.Pool), and the
// nodes due in a grid step tick in one call; a plugin built before
// sessions gets one child process per node, as real nodes run it.
// Either may ask for loop cover (cover.Looper; out of process the rate
// comes back when the policy is opened), which the traffic model sends.
type policies struct {
	New      func(int) (cover.Policy, error)
	TickMany func(time.Time, []cover.Policy, [][]cover.LinkStats) ([][]cover.Target, []error) // nil: one Tick each
	Close    func()
}

func policyFactory(v variant, log *slog.Logger) (*policies, error) {
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
		return &policies{New: func(int) (cover.Policy, error) { return fac(v.Options) }, Close: func() {}}, nil
	}
	l := pluginkit.Launcher{Path: p.Path, Checksum: p.SHA256, Logger: log, Name: p.Name}
	pool, err := coverplugin.StartPool(l)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", v.Label, err)
	}
	return &policies{
		New:      func(int) (cover.Policy, error) { return pool.New(v.Options) },
		TickMany: pool.TickMany,
		Close:    func() { pool.Close() },
	}, nil
}

func runOne(f *File, s runSpec, log *slog.Logger) (*Run, error) {
	pols, err := policyFactory(s.Variant, log)
	if err != nil {
		return nil, err
	}
	defer pols.Close()
	var tickErrs uint64
	n := f.Network
	bin := f.Attack.Bin.Duration
	b := adversary.NewBuilder(s.Nodes, bin)
	cfg := traffic.Config{
		Nodes: s.Nodes, K: n.K, Hops: n.Hops, Domains: n.Domains, Seed: s.Seed,
		Latency: n.Latency.Duration, Jitter: n.Jitter.Duration, Capacity: n.Capacity,
		Warmup: n.Warmup.Duration, Duration: n.Duration.Duration, Initiators: n.Initiators,
		Workload: traffic.Workload{
			Kind: s.Workload.Kind, Rate: s.Workload.Rate, On: s.Workload.On.Duration,
			Off: s.Workload.Off.Duration, Size: s.Workload.Size,
			AckEvery: s.Workload.AckEvery, AckDelay: s.Workload.AckDelay.Duration,
		},
		Policy: pols.New, TickMany: countErrors(pols.TickMany, &tickErrs),
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
		Workload: s.Workload.Name, Nodes: s.Nodes, Seed: s.Seed, Flows: len(flows),
		Correlation: adversary.Evaluate(adversary.CorrelateFlows(trace, flows, ao), truth),
		Originator:  adversary.Evaluate(adversary.DetectOriginators(trace, flows, ao), truth),
		Overhead:    adversary.Overhead(tr.Frames, tr.DataFrames),
		Frames:      tr.Frames, DataFrames: tr.DataFrames, Utilisation: tr.Utilisation,
		LatencyP50: ms(lat.P50), LatencyP99: ms(lat.P99),
		Goodput: adversary.Goodput(tr.Delivered, tr.Duration),
		Dropped: tr.Dropped,
	}
	r.TickErrors = tickErrs
	if lp := tr.Loops; lp.Nodes > 0 {
		rtt := adversary.Latencies(lp.RTTs)
		r.Loops = &Loops{Nodes: lp.Nodes, Frames: lp.Frames, Sent: lp.Sent, Returned: lp.Returned, Lost: lp.Lost,
			RTTP50: ms(rtt.P50), RTTP99: ms(rtt.P99)}
	}
	return r, nil
}

// countErrors wraps a TickMany (nil: each policy's own Tick) and counts
// the ticks that failed: a failed tick leaves the node's links unshaped
// until its next one, which the run must not hide.
func countErrors(tick func(time.Time, []cover.Policy, [][]cover.LinkStats) ([][]cover.Target, []error), n *uint64) func(time.Time, []cover.Policy, [][]cover.LinkStats) ([][]cover.Target, []error) {
	return func(now time.Time, ps []cover.Policy, links [][]cover.LinkStats) ([][]cover.Target, []error) {
		var targets [][]cover.Target
		var errs []error
		if tick != nil {
			targets, errs = tick(now, ps, links)
		} else {
			targets = make([][]cover.Target, len(ps))
			for i, p := range ps {
				t, err := p.Tick(now, links[i])
				targets[i] = t
				if err != nil {
					if errs == nil {
						errs = make([]error, len(ps))
					}
					errs[i] = err
				}
			}
		}
		for _, err := range errs {
			if err != nil {
				*n++
			}
		}
		return targets, errs
	}
}

func pluginName(p Policy) string {
	if p.Path != "" {
		return p.Path
	}
	return p.Plugin
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
