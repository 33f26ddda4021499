package sidebyside

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// CompareConfig is one `tarzan bench compare` run.
type CompareConfig struct {
	Exe       string            // the tarzan binary the Tarzan nodes run
	Dir       string            // scratch directory for both networks ("": a temp dir)
	Baseline  string            // "tor" or "none"
	Nodes     int               // Tarzan nodes (the Tor side has as many processes by default)
	InProcess bool              // every Tarzan plugin in its node's process
	Isolate   bool              // each concurrent flow its own SOCKS user (circuit / tunnel group)
	SOCKS     map[string]string // extra options of Tarzan's socks adapter (e.g. optimistic=true)
	Tor       TorPlan

	Runs     int   // interleaved runs per overlay
	Size     int64 // bytes of the bulk fetch
	Flows    int   // concurrent fetches
	FlowSize int64 // bytes of each
	TTFBs    int   // 1 KiB fetches per run (the run's sample is their median)
	Setups   int   // tunnel/circuit builds per run (likewise)
	Idle     time.Duration
	Only     string // comma-separated workloads to run (setup, ttfb, bulk, flows, idle); "" runs all

	JSON     bool          // CompareAndPrint prints JSON
	Timeout  time.Duration // CompareAndPrint's bound on the whole run (0: none)
	Command  string        // how it was invoked, for the table
	Progress func(format string, a ...any)
}

// DefaultCompare is the configuration the command starts from.
func DefaultCompare() CompareConfig {
	return CompareConfig{Baseline: "tor", Nodes: 12, Tor: DefaultTorPlan, Runs: 3, Size: 100 << 20,
		Flows: 16, FlowSize: 16 << 20, TTFBs: 20, Setups: 10, Idle: 10 * time.Second, Timeout: 30 * time.Minute}
}

// Check says what is wrong with c.
func (c CompareConfig) Check() error {
	switch {
	case c.Baseline != "tor" && c.Baseline != "none":
		return fmt.Errorf("-baseline %q: want tor or none", c.Baseline)
	case c.Nodes < 4 || c.Nodes > 64:
		return fmt.Errorf("-nodes %d: want 4 to 64 (3 hops and a client)", c.Nodes)
	case c.Runs < 1 || c.Size < 1 || c.Flows < 1 || c.FlowSize < 1 || c.TTFBs < 1 || c.Setups < 1:
		return errors.New("runs, sizes, flows and counts must be positive")
	case c.Idle < time.Second:
		return errors.New("the idle window must be at least 1 s")
	}
	if err := checkOnly(c.Only); err != nil {
		return err
	}
	return c.Tor.Check()
}

// overlay is what the workloads need of a network.
type overlay interface {
	SOCKS() netip.AddrPort
	PIDs() []int
	RelayPID() int
	BuildTunnel(ctx context.Context) (time.Duration, error)
	Stop()
}

type torOverlay struct{ *TorNet }

func (t torOverlay) BuildTunnel(ctx context.Context) (time.Duration, error) {
	ctl, err := t.Control(ctx)
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	return ctl.BuildCircuit(ctx)
}

// side is one overlay under test and its samples.
type side struct {
	name   string
	ov     overlay
	target netip.AddrPort // the server as this overlay's client names it
	s      samples

	setupFailures int // builds that failed and were retried
}

// samples holds one value per run for every metric.
type samples struct {
	bulkMBps, bulkCPU, aggMBps, slowMBps, meanMBps, fair, ttfbMS, setupMS, idleNet, idleRelay []float64
}

// Compare starts both networks, runs the workloads on each in turn
// (baseline, Tarzan, baseline, Tarzan, ...) and returns the table. Every
// process it started is stopped when it returns, also on error or when
// ctx is cancelled.
func Compare(ctx context.Context, c CompareConfig) (Table, error) {
	if err := c.Check(); err != nil {
		return Table{}, err
	}
	if _, err := lookCurl(); err != nil {
		return Table{}, err
	}
	dir := c.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tarzan-compare-")
		if err != nil {
			return Table{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	srv, err := StartBytesServer()
	if err != nil {
		return Table{}, err
	}
	defer srv.Close()
	sides, stop, err := c.start(ctx, dir, srv.Addr)
	defer stop()
	if err != nil {
		return Table{}, err
	}
	for _, s := range sides {
		c.progress("%s: warming up (one 1 KiB fetch)", s.name)
		if err := warmUp(ctx, s); err != nil {
			return Table{}, err
		}
	}
	for run := 1; run <= c.Runs; run++ {
		for _, s := range sides {
			c.progress("run %d/%d: %s", run, c.Runs, s.name)
			if err := c.runOnce(ctx, s); err != nil {
				return Table{}, fmt.Errorf("run %d, %s: %w", run, s.name, err)
			}
		}
	}
	return c.table(sides), nil
}

func (c CompareConfig) progress(format string, a ...any) {
	if c.Progress != nil {
		c.Progress(format, a...)
	}
}

// start starts the baseline (if any) and Tarzan; stop stops whatever
// started, whatever the error.
func (c CompareConfig) start(ctx context.Context, dir string, server netip.AddrPort) ([]*side, func(), error) {
	var sides []*side
	stop := func() {
		for _, s := range sides {
			s.ov.Stop()
		}
	}
	if c.Baseline == "tor" {
		bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		tn, err := StartTor(bctx, filepath.Join(dir, "tor"), c.Tor, c.Progress)
		if err != nil {
			return nil, stop, err
		}
		sides = append(sides, &side{name: "tor", ov: torOverlay{tn}, target: server})
	}
	jctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	tz, err := StartTarzan(jctx, filepath.Join(dir, "tarzan"), c.Exe, c.Nodes, server, c.InProcess, c.SOCKS, c.Progress)
	if err != nil {
		return sides, stop, err
	}
	c.progress("%d Tarzan nodes joined in %.1f s", c.Nodes, tz.Net.JoinedIn.Seconds())
	sides = append(sides, &side{name: c.tarzanName(), ov: tz, target: tz.IP.Alias})
	return sides, stop, nil
}

func (c CompareConfig) tarzanName() string {
	if c.InProcess {
		return "tarzan-inproc"
	}
	return "tarzan"
}

// warmUp fetches 1 KiB until it works (the first stream may wait for a
// circuit or tunnel), at most 30 s.
func warmUp(ctx context.Context, s *side) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		f, err := Curl(ctx, s.ov.SOCKS(), "", s.target, 1024, 10*time.Second)
		if err != nil {
			return err
		}
		if f.Complete {
			return nil
		}
		last = f.CurlError
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%s: no 1 KiB fetch through SOCKS %s worked within 30 s (last: %s)", s.name, s.ov.SOCKS(), last)
}

// runOnce runs every workload once on s and appends one sample each.
func (c CompareConfig) runOnce(ctx context.Context, s *side) error {
	for _, w := range []struct {
		name string
		run  func(context.Context, *side) error
	}{{"setup", c.setup}, {"ttfb", c.ttfb}, {"bulk", c.bulk}, {"flows", c.flows}, {"idle", c.idle}} {
		if !c.runs(w.name) {
			continue
		}
		if err := w.run(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// workloads are the names -only takes, in the order a run runs them.
var workloads = []string{"setup", "ttfb", "bulk", "flows", "idle"}

// runs reports whether the workload name is to run (-only).
func (c CompareConfig) runs(name string) bool {
	if strings.TrimSpace(c.Only) == "" {
		return true
	}
	for _, w := range strings.Split(c.Only, ",") {
		if strings.TrimSpace(w) == name {
			return true
		}
	}
	return false
}

func checkOnly(only string) error {
	if strings.TrimSpace(only) == "" {
		return nil
	}
	for _, w := range strings.Split(only, ",") {
		if !slices.Contains(workloads, strings.TrimSpace(w)) {
			return fmt.Errorf("-only %q: unknown workload %q (want a comma-separated list of %s)", only, w, strings.Join(workloads, ", "))
		}
	}
	return nil
}

// setupAttempts bounds the builds tried for one setup sample: a build
// that fails (tor answers "551 Couldn't start circuit" now and then) is
// counted and tried again.
const setupAttempts = 5

// sampleGap is the pause before each setup and time-to-first-byte sample,
// on both sides. tor sets no TCP_NODELAY: the cell that ends the previous
// sample (DESTROY after a build, RELAY_END after a fetch) gets no answer,
// so the peer delays its ACK (40 ms on Linux) and Nagle holds the next
// sample's first cell (CREATE2, BEGIN) until that ACK comes. Back to
// back, nearly every Tor sample paid those 40 ms; after 250 ms (more than
// Linux's 200 ms longest delayed ACK) none does.
const sampleGap = 250 * time.Millisecond

func (c CompareConfig) setup(ctx context.Context, s *side) error {
	var ms []float64
	for range c.Setups {
		if err := sleep(ctx, sampleGap); err != nil {
			return err
		}
		d, err := buildWithRetry(ctx, s)
		if err != nil {
			return fmt.Errorf("tunnel/circuit setup (%d attempts): %w", setupAttempts, err)
		}
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
	s.s.setupMS = append(s.s.setupMS, Median(ms))
	c.progress("  %s: setup %.2f ms (median of %d; %d failed builds so far)", s.name, Median(ms), len(ms), s.setupFailures)
	return nil
}

func buildWithRetry(ctx context.Context, s *side) (time.Duration, error) {
	var err error
	for range setupAttempts {
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var d time.Duration
		d, err = s.ov.BuildTunnel(bctx)
		cancel()
		if err == nil {
			return d, nil
		}
		s.setupFailures++
		if err := sleep(ctx, time.Second); err != nil {
			return 0, err
		}
	}
	return 0, err
}

func (c CompareConfig) ttfb(ctx context.Context, s *side) error {
	var ms []float64
	for range c.TTFBs {
		if err := sleep(ctx, sampleGap); err != nil {
			return err
		}
		f, err := Curl(ctx, s.ov.SOCKS(), "", s.target, 1024, 30*time.Second)
		if err != nil {
			return err
		}
		if !f.Complete {
			return fmt.Errorf("1 KiB fetch failed: %s", f.CurlError)
		}
		ms = append(ms, float64(f.TTFB)/float64(time.Millisecond))
	}
	s.s.ttfbMS = append(s.s.ttfbMS, Median(ms))
	c.progress("  %s: 1 KiB time to first byte %.2f ms (median of %d)", s.name, Median(ms), len(ms))
	return nil
}

func (c CompareConfig) bulk(ctx context.Context, s *side) error {
	before, err := SampleCPU(s.ov.PIDs())
	if err != nil {
		return err
	}
	f, err := Curl(ctx, s.ov.SOCKS(), "", s.target, c.Size, maxTime(c.Size))
	if err != nil {
		return err
	}
	after, err := SampleCPU(s.ov.PIDs())
	if err != nil {
		return err
	}
	if !f.Complete {
		return fmt.Errorf("bulk fetch of %d bytes: got %d: %s", c.Size, f.Bytes, f.CurlError)
	}
	cpu := CPUSeconds(before, after) * float64(100<<20) / float64(c.Size)
	s.s.bulkMBps = append(s.s.bulkMBps, f.MBps())
	s.s.bulkCPU = append(s.s.bulkCPU, cpu)
	c.progress("  %s: bulk %.2f MB/s, %.2f CPU-s per 100 MiB", s.name, f.MBps(), cpu)
	return nil
}

func (c CompareConfig) flows(ctx context.Context, s *side) error {
	fs, wall, err := CurlMany(ctx, c.Flows, s.ov.SOCKS(), c.Isolate, s.target, c.FlowSize, maxTime(c.FlowSize*int64(c.Flows)))
	if err != nil {
		return err
	}
	var total int64
	slow, sum, failed := math.Inf(1), 0.0, 0
	for _, f := range fs {
		total += f.Bytes
		slow = min(slow, f.MBps())
		sum += f.MBps()
		if !f.Complete {
			failed++
		}
	}
	if failed > 0 { // kept: a starved flow is what this measures
		c.progress("  %s: %d of %d flows did not complete (counted with the bytes they got): %s", s.name, failed, len(fs), firstError(fs))
	}
	agg, mean := float64(total)/1e6/wall.Seconds(), sum/float64(len(fs))
	s.s.aggMBps = append(s.s.aggMBps, agg)
	s.s.slowMBps = append(s.s.slowMBps, slow)
	s.s.meanMBps = append(s.s.meanMBps, mean)
	s.s.fair = append(s.s.fair, slow/mean)
	c.progress("  %s: %d flows %.2f MB/s together, slowest %.2f, mean %.2f", s.name, len(fs), agg, slow, mean)
	return nil
}

func firstError(fs []Fetch) string {
	for _, f := range fs {
		if f.CurlError != "" {
			return f.CurlError
		}
	}
	return ""
}

// idle waits 2 s for the workloads' tails, then measures the network's
// and one relay's CPU over the idle window.
func (c CompareConfig) idle(ctx context.Context, s *side) error {
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	relay := []int{s.ov.RelayPID()}
	netBefore, err := SampleCPU(s.ov.PIDs())
	if err != nil {
		return err
	}
	relayBefore, err := SampleCPU(relay)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := sleep(ctx, c.Idle); err != nil {
		return err
	}
	netAfter, err := SampleCPU(s.ov.PIDs())
	if err != nil {
		return err
	}
	relayAfter, err := SampleCPU(relay)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	// millicores: an idle tor relay uses ~0.002 cores, which the table's
	// two decimals would print as 0.00.
	n, r := 1000*CPUSeconds(netBefore, netAfter)/secs, 1000*CPUSeconds(relayBefore, relayAfter)/secs
	s.s.idleNet = append(s.s.idleNet, n)
	s.s.idleRelay = append(s.s.idleRelay, r)
	c.progress("  %s: idle %.1f millicores (network), %.2f millicores (one relay)", s.name, n, r)
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// table assembles the metrics: the last side is Tarzan, the first the
// baseline if there is one.
func (c CompareConfig) table(sides []*side) Table {
	test := sides[len(sides)-1]
	base := &side{name: "none"}
	if len(sides) > 1 {
		base = sides[0]
	}
	m := func(name, unit string, higher bool, target string, pick func(*samples) []float64) Metric {
		return Metric{Name: name, Unit: unit, HigherBetter: higher, Base: base.name, Test: test.name,
			BaseSamples: slices.Clone(pick(&base.s)), TestSamples: slices.Clone(pick(&test.s)), Target: target}
	}
	size, flow := sizeName(c.Size), sizeName(c.FlowSize)
	t := Table{
		Title:   fmt.Sprintf("Tarzan (%d nodes, 3 hops) beside %s, through SOCKS5 with curl", c.Nodes, c.baselineTitle()),
		Runs:    c.Runs,
		Command: c.Command,
		Metrics: []Metric{
			m(size+" through SOCKS", "MB/s", true, "≥ 5× Tor", func(s *samples) []float64 { return s.bulkMBps }),
			m("CPU-s per 100 MiB, all overlay processes", "CPU-s", false, "≤ Tor", func(s *samples) []float64 { return s.bulkCPU }),
			m(fmt.Sprintf("%d flows × %s, aggregate", c.Flows, flow), "MB/s", true, "≥ 2× Tor", func(s *samples) []float64 { return s.aggMBps }),
			m(fmt.Sprintf("%d flows, slowest flow", c.Flows), "MB/s", true, "", func(s *samples) []float64 { return s.slowMBps }),
			m(fmt.Sprintf("%d flows, mean flow", c.Flows), "MB/s", true, "", func(s *samples) []float64 { return s.meanMBps }),
			m(fmt.Sprintf("%d flows, slowest ÷ mean", c.Flows), "ratio", true, "≥ 0.5", func(s *samples) []float64 { return s.fair }),
			m(fmt.Sprintf("1 KiB time to first byte (median of %d)", c.TTFBs), "ms", false, "≤ 0.3× Tor", func(s *samples) []float64 { return s.ttfbMS }),
			m(fmt.Sprintf("tunnel/circuit setup, 3 hops (median of %d)", c.Setups), "ms", false, "≤ 5 ms", func(s *samples) []float64 { return s.setupMS }),
			m("idle CPU, whole network", "mcores", false, "", func(s *samples) []float64 { return s.idleNet }),
			m("idle CPU, one relay (with its plugins)", "mcores", false, "≤ Tor relay", func(s *samples) []float64 { return s.idleRelay }),
		},
	}
	// -only: leave out the metrics of workloads that did not run.
	if strings.TrimSpace(c.Only) != "" {
		t.Metrics = slices.DeleteFunc(t.Metrics, func(m Metric) bool { return len(m.BaseSamples) == 0 && len(m.TestSamples) == 0 })
	}
	t.Notes = c.notes()
	for _, sd := range sides {
		if sd.setupFailures > 0 {
			t.Notes = append(t.Notes, fmt.Sprintf("%s: %d tunnel/circuit builds failed and were retried (not in the setup times)", sd.name, sd.setupFailures))
		}
	}
	return t
}

func (c CompareConfig) isolationNote() string {
	if c.Isolate {
		return "isolation (-isolate): flow i sends SOCKS credentials flowI:x, so Tor gives each flow its own circuit (IsolateSOCKSAuth) " +
			"and Tarzan's SOCKS adapter its own isolation group; the other fetches send none"
	}
	return "isolation: curl sends no SOCKS credentials, so each overlay may carry all flows of a run over one circuit/tunnel group " +
		"(Tor's default IsolateSOCKSAuth and IsolateClientAddr see one client; Tarzan's SOCKS adapter groups by credentials likewise); -isolate gives each flow its own"
}

func (c CompareConfig) baselineTitle() string {
	if c.Baseline == "tor" {
		return "a private Tor network (3-hop circuits)"
	}
	return "no baseline"
}

func (c CompareConfig) notes() []string {
	n := []string{
		"MB/s = 10^6 bytes/s of HTTP body as curl reports it (%{size_download} / %{time_total}); " +
			"time to first byte is curl's %{time_starttransfer} (SOCKS handshake, stream setup and the HTTP request included)",
		fmt.Sprintf("CPU-s: utime+stime from /proc/PID/stat of every process of the overlay (%s) before and after the bulk fetch, scaled to 100 MiB; "+
			"idle: the same over %v after 2 s of quiet, in millicores (1/1000 of a core); both networks run throughout, the one not measured idles", c.cpuWhat(), c.Idle),
		c.isolationNote(),
		fmt.Sprintf("Tarzan: %d `tarzan node` processes on 127.N.0.1, node 1 SOCKS5, the others exits; cover none; plugins %s",
			c.Nodes, map[bool]string{true: "in process", false: "out of process (the default)"}[c.InProcess]),
	}
	if len(c.SOCKS) > 0 {
		keys := make([]string, 0, len(c.SOCKS))
		for k := range c.SOCKS {
			keys = append(keys, k+"="+c.SOCKS[k])
		}
		sort.Strings(keys)
		n = append(n, "Tarzan's socks adapter options: "+strings.Join(keys, " "))
	}
	if c.Baseline == "tor" {
		n = append(n, fmt.Sprintf("Tor: %d tor processes on 127.0.0.1 (%d directory authorities that relay, %d exits accepting 127.0.0.0/8 only, %d middle relays, 1 client); "+
			"TestingTorNetwork, full descriptors, scheduler %s; setup is EXTENDCIRCUIT 0 to the BUILT event on the control port",
			c.Tor.Authorities+c.Tor.Exits+c.Tor.Relays+1, c.Tor.Authorities, c.Tor.Exits, c.Tor.Relays, c.Tor.schedulerName()))
	}
	return n
}

func (c CompareConfig) cpuWhat() string {
	if c.Baseline == "tor" {
		return "every tor; every tarzan node and its plugin children"
	}
	return "every tarzan node and its plugin children"
}

// sizeName prints a byte count as the flags take it: 100MiB, 16KiB, 1000.
func sizeName(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// ParseSize reads a byte count: 123, 64KiB, 100MiB, 1GiB (also KB/MB/GB
// as powers of 1000).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := cutSuffixFold(s, u.suffix)
		if !ok {
			continue
		}
		var n int64
		if _, err := fmt.Sscanf(num, "%d", &n); err != nil || fmt.Sprint(n) != num || n <= 0 {
			return 0, fmt.Errorf("size %q: want a positive count with an optional unit (B, KiB, MiB, GiB, KB, MB, GB), e.g. 100MiB", s)
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("size %q: unknown unit", s)
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || !strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return "", false
	}
	return s[:len(s)-len(suffix)], true
}

// lookCurl finds curl on PATH.
func lookCurl() (string, error) {
	p, err := execLookPath("curl")
	if err != nil {
		return "", errors.New("the workloads run curl, which is not on PATH (Debian/Ubuntu: apt-get install curl)")
	}
	return p, nil
}
