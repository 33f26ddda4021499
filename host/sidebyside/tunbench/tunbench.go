// Package tunbench measures Tarzan (3 hops) beside Yggdrasil (one
// non-anonymous overlay hop) through the real kernel TUN devices, in
// Linux network namespaces it creates, with unmodified iperf3 and ping:
// TCP throughput, CPU-s per GB of every overlay process (with plugin
// children), the highest UDP rate with < 1 % loss, and the ping round
// trip. Runs are interleaved (Tarzan, Yggdrasil, Yggdrasil at MTU 1280,
// Tarzan, ...), each overlay built fresh for its run and removed after
// it, so nothing of one runs while the other is measured. The result is
// one sidebyside.Table of medians.
//
// It needs root, iproute2, iperf3 and ping; yggdrasil for the baseline.
// Every namespace is named "tzb" + the runner's PID + ...; all of them
// (with their veths, bridges, TUN devices and processes) are removed at
// the end of each run, on failure and when ctx is cancelled (Ctrl-C),
// and namespaces a killed earlier run left behind are removed at start.
package tunbench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/host/netns"
	"github.com/tarzan-net/tarzan/host/sidebyside"
)

// NamePrefix starts every namespace name this package creates, unless
// Config.NetnsPrefix says otherwise.
const NamePrefix = "tzb"

const iperfPort = 5201

// prefixRE is what Config.NetnsPrefix may be: short, so the names stay
// readable, and nothing ip(8) would take for an option or a path.
var prefixRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]{0,7}$`)

// Baselines Run knows.
const (
	BaselineYggdrasil = "yggdrasil"
	BaselineNone      = "none"
	// BaselineTarzan + PATH compares two Tarzan builds through the same
	// harness: the nodes of the baseline run PATH (e.g. main's build).
	BaselineTarzan = "tarzan:"
	baseTarzanName = "tarzan-base"
)

// Config of a comparison. Zero values take the defaults.
type Config struct {
	Binary    string    // the tarzan executable every node runs ("": this executable)
	Runs      int       // interleaved runs per overlay (3)
	Seconds   int       // iperf3 TCP duration (5)
	Reverse   bool      // iperf3 -R: the server sends, a download through the TUN (default: the client sends)
	Streams   int       // iperf3 -P: parallel TCP streams (1)
	UDPSecs   int       // each UDP step's duration (2)
	UDPRates  []float64 // Mbit/s, increasing (10, 25, 50, 100, 200, 400, 800)
	MaxLoss   float64   // percent: a UDP step passes below it (1)
	Pings     int       // echo requests per ping run (20)
	IdleSecs  int       // quiet window for idle CPU, after the workloads (5)
	Nodes     int       // Tarzan relays/exits besides the client (6)
	Baseline  string    // "yggdrasil" or "none" ("yggdrasil")
	No1280    bool      // skip the second Yggdrasil, at IfMTU 1280
	InProcess bool      // Tarzan's plugins inside their nodes (default: out of process, as node.toml)
	WorkDir   string    // keeps configs and logs; "" = a temporary directory, removed
	// NetnsPrefix starts the namespace names (NamePrefix): runs with
	// different prefixes never touch each other's namespaces, not even
	// a dead runner's.
	NetnsPrefix string
	Limit       time.Duration // bound on the whole comparison (15 min)
	Command     string        // the command line, for the table
	Progress    io.Writer     // one line per step (nil: none)
}

// Defaults fills the zero fields.
func (c *Config) Defaults() {
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if c.Seconds <= 0 {
		c.Seconds = 5
	}
	if c.UDPSecs <= 0 {
		c.UDPSecs = 2
	}
	if len(c.UDPRates) == 0 {
		c.UDPRates = []float64{10, 25, 50, 100, 200, 400, 800}
	}
	if c.MaxLoss <= 0 {
		c.MaxLoss = 1
	}
	if c.Pings <= 0 {
		c.Pings = 20
	}
	if c.IdleSecs <= 0 {
		c.IdleSecs = 5
	}
	if c.Nodes <= 0 {
		c.Nodes = 6
	}
	if c.Baseline == "" {
		c.Baseline = BaselineYggdrasil
	}
	if c.Binary == "" {
		c.Binary, _ = os.Executable()
	}
	if c.Limit <= 0 {
		c.Limit = 15 * time.Minute
	}
	if c.NetnsPrefix == "" {
		c.NetnsPrefix = NamePrefix
	}
}

// Check reports what this machine lacks for cfg: root, the commands.
func Check(cfg Config) error {
	if err := netns.Check(); err != nil {
		return fmt.Errorf("tarzan bench tun %w", err)
	}
	tools := []struct{ cmd, pkg string }{{"iperf3", "iperf3"}, {"ping", "iputils-ping"}}
	if cfg.Baseline == BaselineYggdrasil {
		tools = append(tools, struct{ cmd, pkg string }{"yggdrasil", "yggdrasil"})
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t.cmd, t.pkg))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	msg := "tarzan bench tun needs " + strings.Join(missing, ", ")
	if cfg.Baseline == BaselineYggdrasil {
		msg += "; -baseline none measures Tarzan alone"
	}
	return errors.New(msg)
}

// overlay is one side of the comparison.
type overlay interface {
	name() string
	up(ctx context.Context, set *netns.Set, dir string, progress func(string, ...any)) (*running, error)
}

// running is an overlay that is up: the client namespace, the address
// the workloads reach through its TUN, its processes.
type running struct {
	client, target string
	pids           func() []int
	stop           func() // before the namespaces go (nil: nothing)
}

// sample is one run's figures for one overlay.
type sample struct {
	tcpMbit, cpuPerGB, udpMbit, rttMs, idleCores float64
}

// Run runs the comparison and returns its table. Each overlay's failure
// in a run is a note and a missing sample; Run fails only when Tarzan
// gave no sample at all.
func Run(ctx context.Context, cfg Config) (sidebyside.Table, error) {
	cfg.Defaults()
	tab := tableHead(cfg)
	if cfg.Binary == "" {
		return tab, errors.New("tunbench: no tarzan executable (Config.Binary)")
	}
	basePath, baseTarzan := strings.CutPrefix(cfg.Baseline, BaselineTarzan)
	if cfg.Baseline != BaselineYggdrasil && cfg.Baseline != BaselineNone && (!baseTarzan || basePath == "") {
		return tab, fmt.Errorf("tunbench: baseline %q: want %s, %s or %sPATH (another tarzan build)", cfg.Baseline, BaselineYggdrasil, BaselineNone, BaselineTarzan)
	}
	if baseTarzan {
		if _, err := os.Stat(basePath); err != nil {
			return tab, fmt.Errorf("tunbench: baseline build: %w", err)
		}
		tab.Title = "Tarzan (3 hops), this build beside " + basePath + ", TUN in network namespaces"
	}
	if !prefixRE.MatchString(cfg.NetnsPrefix) {
		return tab, fmt.Errorf("tunbench: namespace prefix %q: want a letter, then up to 7 letters or digits", cfg.NetnsPrefix)
	}
	if err := Check(cfg); err != nil {
		return tab, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Limit)
	defer cancel()
	progress := func(f string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench tun: "+f+"\n", a...)
		}
	}
	if stale := netns.RemoveStale(cfg.NetnsPrefix); len(stale) > 0 {
		progress("removed %d namespaces a killed earlier run left: %s", len(stale), strings.Join(stale, " "))
	}
	work := cfg.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "tarzan-bench-tun-")
		if err != nil {
			return tab, err
		}
		defer os.RemoveAll(d)
		work = d
	}
	overlays := []overlay{tarzanOverlay{binary: cfg.Binary, nodes: cfg.Nodes, inProcess: cfg.InProcess}}
	if baseTarzan {
		overlays = append(overlays, tarzanOverlay{label: baseTarzanName, binary: basePath, nodes: cfg.Nodes, inProcess: cfg.InProcess})
	}
	if cfg.Baseline == BaselineYggdrasil {
		overlays = append(overlays, yggOverlay{})
		if !cfg.No1280 {
			overlays = append(overlays, yggOverlay{mtu: 1280})
		}
	}
	samples := map[string][]sample{}
	load0 := loadavg()
	for run := 1; run <= cfg.Runs; run++ {
		for _, o := range overlays {
			if ctx.Err() != nil {
				return table(tab, cfg, overlays, samples), fmt.Errorf("stopped in run %d: %w", run, ctx.Err())
			}
			dir := filepath.Join(work, fmt.Sprintf("run%d-%s", run, o.name()))
			s, err := runOne(ctx, cfg, o, run, dir, progress)
			if err != nil {
				tab.Notes = append(tab.Notes, fmt.Sprintf("run %d, %s: %v", run, o.name(), err))
				progress("run %d, %s: %v", run, o.name(), err)
				continue
			}
			samples[o.name()] = append(samples[o.name()], s)
		}
	}
	tab = table(tab, cfg, overlays, samples)
	tab.Notes = append(tab.Notes, fmt.Sprintf("machine: %d CPUs; load average (1, 5, 15 min) %s at the start, %s at the end", runtime.NumCPU(), load0, loadavg()))
	if ctx.Err() != nil {
		return tab, fmt.Errorf("stopped: %w", ctx.Err())
	}
	if len(samples["tarzan"]) == 0 {
		where := "set Config.WorkDir (-work DIR) to keep the logs"
		if cfg.WorkDir != "" {
			where = "logs in " + cfg.WorkDir
		}
		return tab, fmt.Errorf("no Tarzan run completed (%s)", where)
	}
	return tab, nil
}

// runOne builds overlay o, measures it once and removes it again.
func runOne(ctx context.Context, cfg Config, o overlay, run int, dir string, progress func(string, ...any)) (sample, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	set := netns.NewSet(cfg.NetnsPrefix, fmt.Sprintf("r%d%s", run, short(o.name())))
	began := time.Now()
	progress("run %d/%d: %s: building", run, cfg.Runs, o.name())
	r, err := o.up(ctx, set, dir, progress)
	defer func() {
		if r != nil && r.stop != nil {
			r.stop()
		}
		for _, p := range set.Close() {
			progress("cleanup: %s", p)
		}
	}()
	if err != nil {
		return sample{}, err
	}
	progress("run %d/%d: %s: up in %.1f s; measuring", run, cfg.Runs, o.name(), time.Since(began).Seconds())
	var s sample
	st0 := allStats()
	tcp, err := iperf(ctx, dir, "tcp", r.client, r.target, cfg.Seconds, "", tcpOpts{reverse: cfg.Reverse, streams: cfg.Streams})
	st1 := allStats()
	t0, _ := treeTicks(st0, r.pids())
	t1, nproc := treeTicks(st1, r.pids())
	c0, c1 := float64(t0)/clockTicks, float64(t1)/clockTicks
	cpuBreakdown(filepath.Join(dir, "cpu-tcp.txt"), st0, st1, r.pids())
	if err != nil {
		return s, err
	}
	s.tcpMbit = tcp.BitsPerSec / 1e6
	if tcp.Bytes > 0 {
		s.cpuPerGB = (c1 - c0) / (tcp.Bytes / 1e9)
	}
	progress("  %s: TCP %.0f Mbit/s, %.2f CPU-s over %d processes (%.1f CPU-s per GB)", o.name(), s.tcpMbit, c1-c0, nproc, s.cpuPerGB)
	if s.udpMbit, err = udpSweep(ctx, dir, o.name(), "udp", r.client, r.target, cfg.UDPSecs, cfg.UDPRates, cfg.MaxLoss, progress); err != nil {
		return s, err
	}
	if s.rttMs, err = ping(ctx, r.client, r.target, cfg.Pings); err != nil {
		return s, err
	}
	if s.idleCores, err = idle(ctx, r.pids, time.Duration(cfg.IdleSecs)*time.Second); err != nil {
		return s, err
	}
	progress("  %s: UDP < %g %% loss up to %g Mbit/s; ping median %.2f ms; idle %.3f cores (%.1f s)", o.name(), cfg.MaxLoss, s.udpMbit, s.rttMs, s.idleCores, time.Since(began).Seconds())
	return s, nil
}

// short abbreviates an overlay name for the namespace names, which keep
// the run and the overlay apart (tzb4242r1t-n3, tzb4242r1y-yc) and stay
// short enough to read in `ip netns list`.
func short(name string) string {
	switch name {
	case "tarzan":
		return "t"
	case "yggdrasil":
		return "y"
	case baseTarzanName:
		return "b"
	}
	return "y1280"
}

// tableHead is the table before any metric.
func tableHead(cfg Config) sidebyside.Table {
	return sidebyside.Table{Title: "Tarzan (3 hops) beside Yggdrasil (1 hop), TUN in network namespaces", Runs: cfg.Runs, Command: cfg.Command}
}

// table fills the metrics: Tarzan against each baseline variant.
func table(tab sidebyside.Table, cfg Config, overlays []overlay, samples map[string][]sample) sidebyside.Table {
	pick := func(name string, f func(sample) float64) []float64 {
		var out []float64
		for _, s := range samples[name] {
			out = append(out, f(s))
		}
		return out
	}
	type row struct {
		name, unit, target string
		higher             bool
		f                  func(sample) float64
	}
	rows := []row{
		{fmt.Sprintf("iperf3 TCP through TUN (%d s%s)", cfg.Seconds, tcpLabel(cfg)), "Mbit/s", "≥ 500 Mbit/s, ≥ 0.45× Yggdrasil", true, func(s sample) float64 { return s.tcpMbit }},
		{"overlay CPU-s per GB (TCP, all processes)", "CPU-s/GB", "", false, func(s sample) float64 { return s.cpuPerGB }},
		{fmt.Sprintf("highest UDP rate with < %g %% loss", cfg.MaxLoss), "Mbit/s", "", true, func(s sample) float64 { return s.udpMbit }},
		{fmt.Sprintf("ping RTT (median of %d)", cfg.Pings), "ms", "", false, func(s sample) float64 { return s.rttMs }},
		{fmt.Sprintf("idle CPU, all overlay processes (%d s)", cfg.IdleSecs), "cores", "", false, func(s sample) float64 { return s.idleCores }},
	}
	bases := []string{}
	for _, o := range overlays[1:] {
		bases = append(bases, o.name())
	}
	if len(bases) == 0 {
		bases = []string{BaselineNone}
	}
	for _, b := range bases {
		for _, r := range rows {
			m := sidebyside.Metric{Name: r.name, Unit: r.unit, HigherBetter: r.higher, Base: b, Test: "tarzan",
				BaseSamples: pick(b, r.f), TestSamples: pick("tarzan", r.f)}
			if b == BaselineYggdrasil || b == BaselineNone {
				m.Target = r.target
			}
			tab.Metrics = append(tab.Metrics, m)
		}
	}
	if bases[0] == BaselineNone {
		tab.Notes = append(tab.Notes, "no baseline (-baseline none): Tarzan alone")
	}
	if bases[0] == BaselineYggdrasil {
		tab.Notes = append(tab.Notes, "Yggdrasil: two namespaces joined by one veth, one TCP peering, no multicast; IfMTU its default (65535, clamped to 53049) and 1280")
	}
	tab.Notes = append(tab.Notes,
		fmt.Sprintf("Tarzan: %d relay/exit nodes and a TUN client node, one per namespace on a bridge, cover none, 3-hop tunnels, plugins %s", cfg.Nodes, map[bool]string{true: "in process", false: "out of process (as node.toml)"}[cfg.InProcess]),
		fmt.Sprintf("iperf3 from the client's namespace to the server's address through the overlay's TUN (%s); UDP steps of %g s with %d-byte datagrams, %v Mbit/s, stopping at the first with ≥ %g %% loss, then one step halfway back", tcpSays(cfg), float64(cfg.UDPSecs), udpPayload, cfg.UDPRates, cfg.MaxLoss),
		"CPU-s: Δ(utime+stime) from /proc/PID/stat over the TCP test, summed over every overlay process and its children (Tarzan: all nodes with their plugins; Yggdrasil: both daemons), per GB the server received; idle CPU: the same over a quiet window 1 s after the last ping, in cores",
		"each overlay is built fresh for each run and removed after it: nothing of one runs while the other is measured")
	return tab
}

// tcpLabel is the TCP row's note on the iperf3 options: ", -R -P 4".
func tcpLabel(cfg Config) string {
	a := tcpOpts{reverse: cfg.Reverse, streams: cfg.Streams}.args()
	if len(a) == 0 {
		return ""
	}
	return ", " + strings.Join(a, " ")
}

// tcpSays is who sends in the TCP test, for the notes.
func tcpSays(cfg Config) string {
	who := "TCP: the client sends"
	if cfg.Reverse {
		who = "TCP with -R: the server sends"
	}
	if cfg.Streams > 1 {
		who += fmt.Sprintf(", %d parallel streams (-P)", cfg.Streams)
	}
	return who
}

// loadavg is /proc/loadavg's first three fields ("?" if unreadable): how
// busy the machine was, for the notes.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// idle is the overlay's CPU in cores over a quiet window that starts 1 s
// after the workloads (their last packets and connection closes done).
func idle(ctx context.Context, pids func() []int, window time.Duration) (float64, error) {
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(time.Second); err != nil {
		return 0, err
	}
	c0, _ := cpuSeconds(pids())
	t0 := time.Now()
	if err := wait(window); err != nil {
		return 0, err
	}
	c1, _ := cpuSeconds(pids())
	return (c1 - c0) / time.Since(t0).Seconds(), nil
}

// RegisterFlags binds c's fields to the flags of `tarzan bench tun`.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Runs, "runs", 3, "interleaved runs per overlay")
	fs.IntVar(&c.Seconds, "t", 5, "iperf3 TCP seconds")
	fs.BoolVar(&c.Reverse, "R", false, "iperf3 -R in the TCP test: the server sends (a download through the TUN)")
	fs.IntVar(&c.Streams, "P", 1, "iperf3 -P in the TCP test: parallel streams, for every overlay alike")
	fs.IntVar(&c.Nodes, "nodes", 6, "Tarzan relay/exit nodes")
	fs.StringVar(&c.Baseline, "baseline", "yggdrasil", "yggdrasil, none (Tarzan alone) or tarzan:PATH (another build)")
	fs.BoolVar(&c.InProcess, "inprocess", false, "run Tarzan's plugins inside their nodes")
	fs.StringVar(&c.WorkDir, "work", "", "keep configs and logs in this directory")
	fs.StringVar(&c.NetnsPrefix, "netns-prefix", NamePrefix, "start every namespace name with this (letters; runs with different prefixes never touch each other's)")
	fs.StringVar(&c.Binary, "bin", "", "tarzan executable the nodes run (default: this one)")
}
