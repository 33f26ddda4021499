// Package testbed runs a traffic-analysis sweep (experiment.File) on real
// node processes instead of the simulator: for every point of the sweep
// it builds a virtual network of Linux network namespaces joined by veth
// pairs to one bridge, starts a `tarzan node` in each with the point's
// cover policy, captures every node's frames with tcpdump on the host
// side of its veth, drives a workload from some nodes through their
// SOCKS5 ports to a server in its own namespace, and hands the captures
// to the global passive adversary of sim/adversary — the same attacks
// and the same experiment.Run fields as the simulator.
//
// It needs root, `ip` (iproute2) and `tcpdump`; Check says what is
// missing. Traffic only ever goes to addresses inside the namespaces it
// creates, and it removes everything it created (processes, namespaces
// and with them the veths and the bridge) when a point ends, fails or is
// cancelled. docs/EXPERIMENTS.md ("Test bed") describes what runs and
// what is measured.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/experiment"
	"github.com/tarzan-net/tarzan/host/localnet"
	"github.com/tarzan-net/tarzan/host/netns"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sim/adversary"
)

const (
	// MinNodes is the smallest test bed: fewer nodes make the anonymity
	// numbers meaningless (chance is 1/(N−1)).
	MinNodes = 12
	// DefaultMaxNodes caps network.nodes unless Options.Nodes is set: every
	// node is a process plus a tcpdump, on the machine that runs the sweep.
	DefaultMaxNodes = 24
	// MaxNodes is the hard limit (addresses 10.i.0.1, one /16 each).
	MaxNodes = 200
	// DefaultMaxDuration caps network.duration.
	DefaultMaxDuration = 60 * time.Second

	nodePort   = 7700
	socksPort  = 1080
	snapLen    = 96 // Ethernet + IPv4 + a full TCP header, or UDP + 32 payload bytes
	serverIP   = "172.31.0.1"
	serverNet  = "172.31.0.0/16"
	joinWithin = 90 * time.Second
)

// Options for Sweep.
type Options struct {
	// Binary is the tarzan executable every node runs (required).
	Binary string
	// Nodes, when > 0, is the size of every run (at least MinNodes),
	// replacing network.nodes; otherwise each size in network.nodes is
	// clamped to [MinNodes, MaxNodes] (MaxNodes 0: DefaultMaxNodes).
	Nodes    int
	MaxNodes int
	// MaxDuration caps network.duration (0: DefaultMaxDuration).
	MaxDuration time.Duration
	// WorkDir keeps every run's configs, node logs and captures; empty
	// means a temporary directory removed at the end.
	WorkDir string
	// OutOfProcess runs every plugin as a child process of its node (the
	// node's default). The test bed's default runs the shipped plugins
	// in process (inprocess = true) to save the machine's CPU for the
	// nodes themselves; an external cover policy (path) is always a
	// child process.
	OutOfProcess bool
	// Progress gets one line per step and per run (nil: none).
	Progress io.Writer
}

// Check reports what the test bed lacks on this machine: root, the ip
// and tcpdump commands, or namespace support.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and packet capture): run it as root, e.g. with sudo")
	}
	for _, t := range []struct{ cmd, pkg string }{{"ip", "iproute2"}, {"tcpdump", "tcpdump"}} {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("the %s command (apt-get install %s)", t.cmd, t.pkg))
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		missing = append(missing, "network namespaces (/proc/self/ns/net)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("--testbed needs %s", strings.Join(missing, "; "))
	}
	return nil
}

// Sweep runs every point of f on the test bed, in order. Results has
// Mode "testbed"; Notes say what the test bed measures differently from
// the simulator. On error the runs completed so far are returned.
func Sweep(ctx context.Context, f *experiment.File, o Options) (*experiment.Results, error) {
	res := &experiment.Results{Name: f.Name, Seed: f.Seed, Seeds: 1, Mode: "testbed", Attack: f.Attack}
	if err := Check(); err != nil {
		return res, err
	}
	if o.Binary == "" {
		return res, errors.New("testbed: Options.Binary (the tarzan executable) is required")
	}
	if o.Nodes > 0 && (o.Nodes < MinNodes || o.Nodes > MaxNodes) {
		return res, fmt.Errorf("testbed: %d nodes: want %d..%d", o.Nodes, MinNodes, MaxNodes)
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = DefaultMaxNodes
	}
	o.MaxNodes = min(max(o.MaxNodes, MinNodes), MaxNodes)
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if stale := netns.RemoveStale(namePrefix); len(stale) > 0 {
		o.progress("removed %d namespaces left by an earlier test bed run that was killed: %s", len(stale), strings.Join(stale, " "))
	}
	work := o.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "tarzan-testbed-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		work = d
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, generalNotes(f, o)...)
	if f.Seeds > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("test bed: every point ran once (seeds = %d applies to the simulator)", f.Seeds))
	}

	type key struct {
		label, workload string
		nodes           int
	}
	seen := map[key]bool{}
	points := f.Points()
	for i, p := range points {
		n := o.Nodes
		if n == 0 {
			n = min(max(p.Nodes, MinNodes), o.MaxNodes)
		}
		if n != p.Nodes {
			res.Notes = appendOnce(res.Notes, fmt.Sprintf("network.nodes %d ran as %d nodes on the test bed (%d..%d; --testbed-nodes sets it)", p.Nodes, n, MinNodes, o.MaxNodes))
		}
		k := key{p.Label, p.Workload.Name, n}
		if seen[k] {
			continue // two sizes clamped to the same
		}
		seen[k] = true
		began := time.Now()
		runDir := filepath.Join(work, fmt.Sprintf("run%02d", i+1))
		r, notes, err := RunPoint(ctx, f, p, n, i+1, runDir, o)
		res.Notes = append(res.Notes, notes...)
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("run %d/%d (%s, %s, %d nodes): %w", i+1, len(points), p.Label, p.Workload.Name, n, err)
			}
			// Record it, say it now, and go on with the next run.
			plugin := p.Policy.Plugin
			if p.Policy.Path != "" {
				plugin = p.Policy.Path
			}
			fl := experiment.Failure{Run: i + 1, Of: len(points), Policy: p.Label, Plugin: plugin, Workload: p.Workload.Name,
				Nodes: n, Error: err.Error(), LogTail: nodeLogTail(runDir, experiment.TailLines)}
			res.Failed = append(res.Failed, fl)
			experiment.PrintFailure(o.Progress, fl)
			continue
		}
		res.Runs = append(res.Runs, *r)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "experiment %d/%d  %-28s %-12s %4d nodes  corr top1 %.2f  H %.2f bits  overhead %.2f  p50 %.0f ms  (%.1fs)\n",
				i+1, len(points), p.Label, p.Workload.Name, n, r.Correlation.Top1, r.Correlation.Entropy, r.Overhead, r.LatencyP50, time.Since(began).Seconds())
		}
	}
	if len(res.Failed) > 0 {
		return res, &experiment.FailedError{Failed: len(res.Failed), Runs: len(points)}
	}
	return res, nil
}

// nodeLogTail is what a failed run's nodes said last: their warnings and
// errors (at most max lines, the latest), each prefixed with the node's
// name; without any, the last lines of the first node's log.
func nodeLogTail(runDir string, max int) []string {
	logs, _ := filepath.Glob(filepath.Join(runDir, "*", "node.log"))
	sort.Strings(logs)
	var out, first []string
	for i, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		name := filepath.Base(filepath.Dir(path))
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		for _, l := range lines {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "panic: ") {
				out = append(out, name+": "+l)
			}
		}
		if i == 0 {
			for _, l := range lines[len(lines)-min(len(lines), 5):] {
				first = append(first, name+": "+l)
			}
		}
	}
	if len(out) == 0 {
		return first
	}
	return out[len(out)-min(len(out), max):]
}

func (o Options) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "testbed: "+format+"\n", a...)
	}
}

func generalNotes(f *experiment.File, o Options) []string {
	notes := []string{
		"test bed: real tarzan node processes, one per network namespace, joined by veth pairs to one bridge; " +
			"the adversary's trace is every 1408-byte node-to-node UDP frame captured by tcpdump on the host side of each node's veth " +
			"(departure on the sender's veth, arrival on the receiver's, matched by their first payload bytes); " +
			"the flows are the exits' TCP connections captured on the server's veth, each attributed to its initiator by its server port",
		"test bed: no link latency, jitter or capacity is emulated (network.latency, jitter and capacity are not used), so utilisation is not measured and written as 0",
		"test bed: data frames = captured link frames − the cover frames the nodes counted (padding_out, control API) over the flow period; link keepalives count as data",
		"test bed: latency is one-way per 1200-byte workload record (client and server share one clock): client → server for onoff, server → client for web",
	}
	if !o.OutOfProcess {
		notes = append(notes, "test bed: the shipped plugins ran inside the node processes (inprocess = true)")
	}
	for _, w := range f.Workload {
		if w.AckEvery > 0 {
			notes = append(notes, fmt.Sprintf("test bed: workload %s: ack_every and ack_delay are the simulator's model of TCP's acknowledgements; here the flows are TCP and their stacks acknowledge as they do (the exits' gVisor stacks: at once, about one frame back per frame received)", w.Name))
		}
	}
	if f.Network.Duration.Duration > o.MaxDuration {
		notes = append(notes, fmt.Sprintf("test bed: network.duration %v capped to %v", f.Network.Duration.Duration, o.MaxDuration))
	}
	return notes
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// tbNode is one node of a test bed.
type tbNode struct {
	i    int // adversary node number
	name string
	ns   string
	dir  string
	addr netip.AddrPort
	host string // the host side of its veth, in the bridge namespace
	init bool   // an initiator (SOCKS5 port)
	node *localnet.Node
}

// RunPoint runs one point of f with nodes nodes in dir (created; kept
// or removed with its parent by the caller). run numbers the point (it
// names the namespaces). It returns the run and notes about it.
func RunPoint(ctx context.Context, f *experiment.File, p experiment.Point, nodes, run int, dir string, o Options) (_ *experiment.Run, notes []string, _ error) {
	label := fmt.Sprintf("%s / %s / %d nodes", p.Label, p.Workload.Name, nodes)
	note := func(format string, a ...any) { notes = append(notes, label+": "+fmt.Sprintf(format, a...)) }
	if err := checkPolicy(p); err != nil {
		return nil, notes, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, notes, err
	}
	nw := f.Network
	hops := nw.Hops
	if hops == 0 {
		hops = config.Default().Tunnels.Hops
	}
	k := nw.K
	if k == 0 {
		k = config.Default().Mimics.Count
	}
	k = min(k, nodes-1)
	warmup := nw.Warmup.Duration
	if warmup <= 0 {
		warmup = 2 * time.Second
	}
	warmup = min(warmup, 30*time.Second)
	duration := nw.Duration.Duration
	if duration <= 0 {
		duration = o.MaxDuration
	}
	duration = min(duration, o.MaxDuration)
	initiators := nw.Initiators
	if initiators <= 0 {
		initiators = 20
	}
	if most := max(1, nodes/2); initiators > most {
		note("%d initiators capped to %d (half the nodes)", initiators, most)
		initiators = most
	}

	// Initiators and their schedules depend on the seed and the size only,
	// so every policy of a sweep gets the same workload.
	rng := mrand.New(mrand.NewPCG(f.Seed, uint64(nodes)))
	perm := rng.Perm(nodes)
	isInit := map[int]bool{}
	var inits []int
	for _, i := range perm[:initiators] {
		isInit[i] = true
	}
	for i := range nodes {
		if isInit[i] {
			inits = append(inits, i)
		}
	}

	set := netns.NewSet(namePrefix, fmt.Sprintf("r%d", run))
	defer func() {
		for _, pr := range set.Close() {
			note("cleanup: %s", pr)
		}
	}()
	o.progress("run %d: %s: building %d node namespaces, a bridge and a server namespace", run, label, nodes)
	ns, srvNS, bbNS, err := buildTopology(ctx, set, nodes, dir)
	if err != nil {
		return nil, notes, err
	}
	for _, n := range ns {
		n.init = isInit[n.i]
	}
	nodeNet, err := launch(ns, dir, p, k, hops, o)
	// Stopped before the namespaces go (deferred after set.close).
	defer nodeNet.Stop()
	if err != nil {
		return nil, notes, err
	}
	o.progress("run %d: %d nodes started (cover %s); waiting for membership and mimic links", run, nodes, p.Label)
	joined := time.Now()
	jctx, cancel := context.WithTimeout(ctx, joinWithin)
	err = nodeNet.WaitJoined(jctx)
	cancel()
	if err != nil {
		return nil, notes, fmt.Errorf("waited %v: %w", joinWithin, err)
	}
	o.progress("run %d: every node knows every peer, all mimic links up (%.1f s)", run, time.Since(joined).Seconds())

	// Captures: every node's veth and the server's, host side.
	pcapDir := filepath.Join(dir, "pcap")
	if err := os.MkdirAll(pcapDir, 0o755); err != nil {
		return nil, notes, err
	}
	var caps []*capture
	for _, n := range ns {
		c, err := startCapture(set, bbNS, n.host, filepath.Join(pcapDir, n.name+".pcap"), fmt.Sprintf("udp port %d", nodePort))
		if err != nil {
			return nil, notes, err
		}
		caps = append(caps, c)
	}
	srvCap, err := startCapture(set, bbNS, "psrv", filepath.Join(pcapDir, "server.pcap"), "tcp")
	if err != nil {
		return nil, notes, err
	}
	caps = append(caps, srvCap)
	for _, c := range caps {
		if err := c.waitListening(ctx); err != nil {
			return nil, notes, err
		}
	}
	origin := time.Now()
	o.progress("run %d: capturing on %d veths; %v of cover only, then %d flows for %v", run, len(caps), warmup, len(inits), duration)

	m := &meter{}
	start := origin.Add(warmup)
	end := start.Add(duration)
	m.from, m.to = start, end
	srv, err := startServer(func(addr string) (net.Listener, error) { return netns.Listen(srvNS, "tcp", addr) }, netip.MustParseAddr(serverIP), inits, m)
	if err != nil {
		return nil, notes, err
	}
	defer srv.close()
	if !sleepUntil(ctx, start) {
		return nil, notes, ctx.Err()
	}
	c0 := snapshot(ctx, ns)
	w := Workload{Kind: p.Workload.Kind, Rate: p.Workload.Rate, On: p.Workload.On.Duration, Off: p.Workload.Off.Duration, Size: p.Workload.Size}
	results := make([]clientResult, len(inits))
	var wg sync.WaitGroup
	for j, i := range inits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := ns[i]
			crng := mrand.New(mrand.NewPCG(f.Seed, uint64(1000+i)))
			socks := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), socksPort)
			dst := netip.AddrPortFrom(netip.MustParseAddr(serverIP), uint16(PortBase+i+1))
			dialNS := func(ctx context.Context, network, addr string) (net.Conn, error) {
				return netns.Dial(ctx, n.ns, network, addr)
			}
			dial := func(ctx context.Context) (net.Conn, error) { return socksConnect(ctx, dialNS, socks, dst) }
			results[j] = runClient(ctx, dial, w, crng, start, end, m, i)
		}()
	}
	// The counters over exactly the flow period; the clients keep their
	// connections open a little longer so records in flight arrive.
	sleepUntil(ctx, end)
	c1 := snapshot(ctx, ns)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, notes, ctx.Err()
	}
	time.Sleep(500 * time.Millisecond) // frames still in flight
	var kernelDrops uint64
	for _, c := range caps {
		kernelDrops += c.stop()
	}
	srv.close()
	var dead []string
	for _, n := range ns {
		if n.node.Exited() {
			dead = append(dead, n.name)
		}
	}
	nodeNet.Stop()
	for _, pr := range set.Close() {
		note("cleanup: %s", pr)
	}
	if len(dead) > 0 {
		note("nodes exited during the run: %s (logs in %s)", strings.Join(dead, " "), dir)
	}
	var connects, written int
	for _, r := range results {
		connects += r.Connects
		written += r.Written
		if r.Err != nil {
			note("initiator n%d: %v", r.Node+1, r.Err)
		}
		if r.Connects == 0 {
			note("initiator n%d never connected through its SOCKS port", r.Node+1)
		}
	}

	// The adversary's view.
	capture := Capture{Server: netip.MustParseAddr(serverIP), ServerPcap: srvCap.path, Initiators: map[uint16]int{},
		Origin: origin, FlowStart: warmup, FlowEnd: warmup + duration, Bin: f.Attack.Bin.Duration}
	for _, n := range ns {
		capture.Nodes = append(capture.Nodes, n.addr)
		capture.NodePcaps = append(capture.NodePcaps, filepath.Join(pcapDir, n.name+".pcap"))
	}
	for _, i := range inits {
		capture.Initiators[uint16(PortBase+i+1)] = i
	}
	an, err := Analyse(capture)
	if err != nil {
		return nil, notes, err
	}
	for _, l := range an.Leaks {
		note("%s", l)
	}
	if len(an.Flows) == 0 {
		return nil, notes, fmt.Errorf("no flow reached the server (%d SOCKS connections, %d records written; node logs in %s)", connects, written, dir)
	}
	ao := adversary.Options{Window: f.Attack.Window.Duration, MaxLag: f.Attack.MaxLag.Duration, Horizon: f.Attack.Horizon.Duration}
	truth := adversary.Truth(an.Flows)
	var pad, dropped, framesOut uint64
	for i := range ns {
		if c0[i] == nil || c1[i] == nil {
			note("node n%d did not report its counters at the start or end of the flows: its cover frames count as data", i+1)
		}
		pad += delta(c0[i], c1[i], "padding_out")
		framesOut += delta(c0[i], c1[i], "frames_out")
		dropped += delta(c0[i], c1[i], "drop_queue_full") + delta(c0[i], c1[i], "drop_transport_write")
	}
	data := uint64(0)
	if an.Frames > pad {
		data = an.Frames - pad
	}
	m.mu.Lock()
	lat := adversary.Latencies(m.latencies)
	delivered := m.bytes
	m.mu.Unlock()
	r := &experiment.Run{
		Policy: p.Label, Plugin: pluginName(p.Policy), Options: p.Options,
		Workload: p.Workload.Name, Nodes: nodes, Seed: f.Seed, Flows: len(an.Flows),
		Correlation: adversary.Evaluate(adversary.CorrelateFlows(an.Trace, an.Flows, ao), truth),
		Originator:  adversary.Evaluate(adversary.DetectOriginators(an.Trace, an.Flows, ao), truth),
		Overhead:    adversary.Overhead(an.Frames, data),
		Frames:      an.Frames, DataFrames: data,
		LatencyP50: ms(lat.P50), LatencyP99: ms(lat.P99),
		Goodput: adversary.Goodput(delivered, duration),
		Dropped: dropped,
	}
	matched := 0.0
	if an.Matched+an.Unmatched > 0 {
		matched = float64(an.Matched) / float64(an.Matched+an.Unmatched)
	}
	note("%d flows from %d initiators (%d SOCKS connections, %d records written); %d link frames in the flow period (the nodes counted %d datagrams out, %d of them cover); %.1f%% of departures matched to an arrival; %d other node-to-node datagrams; tcpdump kernel drops %d",
		len(an.Flows), len(inits), connects, written, an.Frames, framesOut, pad, 100*matched, an.OtherUDP, kernelDrops)
	if o.WorkDir == "" {
		os.RemoveAll(pcapDir) // the captures are the bulk; Sweep removes the rest
	}
	return r, notes, nil
}

func delta(a, b map[string]uint64, k string) uint64 {
	if b[k] < a[k] {
		return 0
	}
	return b[k] - a[k]
}

func pluginName(p experiment.Policy) string {
	if p.Path != "" {
		return p.Path
	}
	return p.Plugin
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// checkPolicy fails on an unknown shipped policy or bad options before a
// network is built (an external one is checked by its node at start).
func checkPolicy(p experiment.Point) error {
	if p.Policy.Path != "" {
		if _, err := os.Stat(p.Policy.Path); err != nil {
			return fmt.Errorf("policy %s: %w", p.Label, err)
		}
		return nil
	}
	fac, ok := builtin.Covers[p.Policy.Plugin]
	if !ok {
		return fmt.Errorf("cover policy %q is not shipped (shipped: %v)", p.Policy.Plugin, builtin.Names(builtin.KindCover))
	}
	probe, err := fac(p.Options)
	if err != nil {
		return fmt.Errorf("policy %s: %w", p.Label, err)
	}
	probe.Close()
	return nil
}

// buildTopology creates the bridge namespace, one namespace per node
// (10.i.0.1/8 on eth0, i from 1) and the server namespace
// (172.31.0.1/16), each joined to the bridge by a veth pair whose host
// side (p<i>, psrv) is in the bridge namespace.
func buildTopology(ctx context.Context, set *netns.Set, nodes int, dir string) (ns []*tbNode, srvNS, bbNS string, err error) {
	bbNS, err = set.Add(ctx, "bb")
	if err != nil {
		return nil, "", "", err
	}
	if err := netns.IP(ctx, "-n", bbNS, "link", "add", "br0", "type", "bridge"); err != nil {
		return nil, "", "", err
	}
	if err := netns.IP(ctx, "-n", bbNS, "link", "set", "br0", "up"); err != nil {
		return nil, "", "", err
	}
	attach := func(name, host, prefix string, routes ...string) (string, error) {
		n, err := set.Add(ctx, name)
		if err != nil {
			return "", err
		}
		steps := [][]string{
			{"link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", host, "netns", bbNS},
			{"-n", bbNS, "link", "set", host, "master", "br0", "up"},
			{"-n", n, "addr", "add", prefix, "dev", "eth0"},
			{"-n", n, "link", "set", "eth0", "up"},
		}
		for _, r := range routes {
			steps = append(steps, []string{"-n", n, "route", "add", r, "dev", "eth0"})
		}
		for _, s := range steps {
			if err := netns.IP(ctx, s...); err != nil {
				return "", err
			}
		}
		return n, nil
	}
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		ip := netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 1})
		n := &tbNode{i: i, name: name, dir: filepath.Join(dir, name), addr: netip.AddrPortFrom(ip, nodePort), host: fmt.Sprintf("p%d", i+1)}
		// Exits reach the server subnet on the bridge from their own address.
		if n.ns, err = attach(name, n.host, ip.String()+"/8", serverNet); err != nil {
			return nil, "", "", err
		}
		ns = append(ns, n)
	}
	if srvNS, err = attach("srv", "psrv", serverIP+"/16", "10.0.0.0/8"); err != nil {
		return nil, "", "", err
	}
	return ns, srvNS, bbNS, nil
}

// nodeConfigs are every node's configuration: static discovery of every
// node, k mimics, hops, the point's cover policy; every node an exit
// (pnat) that may reach exactly the server subnet; initiators with a
// SOCKS5 port on their namespace's loopback.
func nodeConfigs(ns []*tbNode, p experiment.Point, k, hops int, o Options) ([]*config.Config, error) {
	var peers []string
	var cfgs []*config.Config
	for _, n := range ns {
		peers = append(peers, n.addr.String())
	}
	policyPath := ""
	if p.Policy.Path != "" {
		abs, err := filepath.Abs(p.Policy.Path)
		if err != nil {
			return nil, err
		}
		policyPath = abs
	}
	for _, n := range ns {
		cfg := config.Default()
		cfg.Node.Control = "127.0.0.1:0"
		cfg.Node.LogLevel = "info"
		cfg.Node.Exit = true
		cfg.Mimics.Count = k
		cfg.Tunnels.Hops = hops
		cfg.Transport.Name = "udp"
		cfg.Transport.Listen = n.addr
		cfg.Transport.InProcess = !o.OutOfProcess
		cfg.Discovery.Name = "static"
		cfg.Discovery.Options = map[string]string{"peers": strings.Join(peers, ","), "interval": "2s"}
		cfg.Discovery.InProcess = !o.OutOfProcess
		if policyPath != "" {
			cfg.Cover.Plugin = config.Plugin{Name: p.Policy.Name, Path: policyPath, SHA256: p.Policy.SHA256, Options: p.Options}
		} else {
			cfg.Cover.Plugin = config.Plugin{Name: p.Policy.Plugin, InProcess: !o.OutOfProcess, Options: p.Options}
		}
		if cfg.Cover.Options == nil {
			cfg.Cover.Options = map[string]string{}
		}
		if n.init {
			cfg.Adapter = config.Plugin{Name: "socks", InProcess: !o.OutOfProcess,
				Options: map[string]string{"listen": fmt.Sprintf("127.0.0.1:%d", socksPort)}}
		}
		// The core hands exit.policy to pnat at open (pnat's own policy
		// option is deprecated): it accepts exactly the server subnet.
		cfg.Exit.Policy = []string{"accept " + serverNet, "reject *:*"}
		cfg.Exit.InProcess = !o.OutOfProcess
		cfg.Exit.Options = map[string]string{}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}

// launch writes the nodes' identities and configurations (localnet) and
// starts each node inside its namespace.
func launch(ns []*tbNode, dir string, p experiment.Point, k, hops int, o Options) (*localnet.Net, error) {
	nw := &localnet.Net{}
	cfgs, err := nodeConfigs(ns, p, k, hops, o)
	if err != nil {
		return nw, err
	}
	if nw, err = localnet.Write(dir, cfgs, func(i int) string { return ns[i].name }); err != nil {
		return &localnet.Net{}, err
	}
	nw.Progress = func(format string, a ...any) { o.progress(format, a...) }
	for i, n := range nw.Nodes {
		ns[i].node = n
		n.Wrap = []string{"ip", "netns", "exec", ns[i].ns}
		n.HTTP = nsHTTP(ns[i].ns)
	}
	return nw, nw.Start(o.Binary)
}

// nsHTTP is an HTTP client whose connections are dialled inside ns: a
// node's control API listens on its namespace's loopback.
func nsHTTP(ns string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return netns.Dial(ctx, ns, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		},
	}
}

// snapshot returns every node's counters (nil for a node that did not
// answer).
func snapshot(ctx context.Context, ns []*tbNode) []map[string]uint64 {
	out := make([]map[string]uint64, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		if n.node == nil || n.node.Client == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if st, err := n.node.Client.Status(cctx); err == nil {
				out[i] = st.Counters
			}
		}()
	}
	wg.Wait()
	return out
}

// capture is one tcpdump.
type capture struct {
	p    *netns.Proc
	path string
	log  string
}

// startCapture runs tcpdump on iface (in namespace ns) into path.
func startCapture(set *netns.Set, ns, iface, path, filter string) (*capture, error) {
	logPath := strings.TrimSuffix(path, ".pcap") + ".tcpdump.log"
	args := []string{"tcpdump", "-i", iface, "-n", "-s", strconv.Itoa(snapLen), "-B", "8192", "-Z", "root", "-w", path}
	args = append(args, strings.Fields(filter)...)
	p, err := set.Start("tcpdump "+iface, ns, logPath, args...)
	if err != nil {
		return nil, err
	}
	return &capture{p: p, path: path, log: logPath}, nil
}

// waitListening waits for tcpdump to say it is capturing.
func (c *capture) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(c.log)
		if strings.Contains(string(b), "listening on") {
			return nil
		}
		if c.p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("%s did not start: %s", c.p.Name, strings.TrimSpace(string(b)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var dropsRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// stop ends the capture (SIGINT: tcpdump flushes its file) and returns
// the packets the kernel dropped for it.
func (c *capture) stop() uint64 {
	c.p.Stop(syscall.SIGINT, 5*time.Second)
	b, _ := os.ReadFile(c.log)
	if m := dropsRE.FindSubmatch(b); m != nil {
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		return n
	}
	return 0
}

// namePrefix starts every namespace name of the test bed (followed by
// the runner's PID and the run number: see host/netns).
const namePrefix = "tztb"
