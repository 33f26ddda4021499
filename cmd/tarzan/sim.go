package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/sim"
	"github.com/tarzan-net/tarzan/sim/simplot"
)

// `tarzan sim` runs N real nodes in this process on the simulated network
// (sim/simnet) and reports convergence, handshakes, tunnels, memory, churn
// and the Sybil shares; see package sim.
func runSim(args []string) error {
	fs := newFlags("sim", "sim --nodes N [--json] [--seed S] [--k 6] [--hops 3] [--tunnels T]\n"+
		"           [--churn X] [--sybil-nodes M --sybil-domains D] [--plot FILE.png]\n\n"+
		"Runs N nodes of the real core in one process on an in-memory network,\n"+
		"waits for full membership (gossip from one bootstrap address), builds\n"+
		"tunnels and reports. A progress line goes to stderr.")
	def := sim.DefaultConfig()
	nodes := fs.Int("nodes", def.Nodes, "honest nodes")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of a table")
	seed := fs.Uint64("seed", 1, "seed of identities, addresses and the network's random choices")
	k := fs.Int("k", def.K, "mimics chosen per node")
	hops := fs.Int("hops", def.Hops, "tunnel length (1..4)")
	tunnels := fs.Int("tunnels", def.Tunnels, "tunnels to build after convergence")
	churn := fs.Float64("churn", 0, "percent of nodes that leave and join per epoch")
	churnEpochs := fs.Int("churn-epochs", 3, "epochs of churn")
	epoch := fs.Duration("epoch", 0, "epoch length (default 24h, 30s with --churn)")
	sybilNodes := fs.Int("sybil-nodes", 0, "adversary nodes")
	sybilDomains := fs.Int("sybil-domains", 0, "/16s the adversary nodes are in (default 1)")
	domains := fs.Int("domains", 0, "/16s the honest nodes are spread over (default nodes/2)")
	perMid := fs.Int("per-24", 1, "honest nodes per /24")
	discovery := fs.String("discovery", "gossip", "gossip (one bootstrap address) or static (every address)")
	gossipInterval := fs.Duration("gossip-interval", def.GossipInterval, "gossip round interval (default 1s)")
	gossipMax := fs.Int("gossip-max-bytes", 256<<10, "gossip plugin's byte budget per round")
	latency := fs.Duration("latency", def.Net.Latency, "one-way link latency")
	jitter := fs.Duration("jitter", def.Net.Jitter, "extra uniform delay per datagram")
	loss := fs.Float64("loss", 0, "datagram loss probability")
	bandwidth := fs.Float64("bandwidth", def.Net.Bandwidth, "uplink bytes/s per node (0: unlimited)")
	noShare := fs.Bool("no-share", false, "do not share mimic tables and verified descriptors between nodes")
	selectionOnly := fs.Bool("selection-only", false, "run no nodes: draw the Sybil shares on the full-membership mimic table of the same network")
	grind := fs.Int("grind", 0, "with --selection-only and Sybils: each adversary node tries up to this many identities for the best mimic choices; reports shares per strategy and path rule")
	grindPool := fs.Int("grind-pool", 0, "with --grind: the adversary also picks which of this many /16s (one node each) to show")
	grindInsiders := fs.Int("grind-insiders", 0, "with --grind: the adversary also has one node in each of this many honest /16s")
	grindSearch := fs.Duration("grind-search", 20*time.Second, "with --grind-pool: time the adversary searches for its best /16s, per path rule")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	plot := fs.String("plot", "", "draw convergence (and Sybil) curves to this PNG file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file just before the nodes stop")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060) while running")
	memLimit := fs.Float64("mem-limit", 0.75, "soft heap limit as a share of physical memory (the collector works harder near it); 0: none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *nodes < 2 {
		fs.Usage()
		return errUsage
	}
	cfg := def
	cfg.Nodes, cfg.Seed, cfg.K, cfg.Hops, cfg.Tunnels = *nodes, *seed, *k, *hops, *tunnels
	cfg.Churn, cfg.ChurnEpochs, cfg.EpochLength = *churn/100, *churnEpochs, *epoch
	cfg.SybilNodes, cfg.SybilDomains, cfg.Domains, cfg.PerMid = *sybilNodes, *sybilDomains, *domains, *perMid
	cfg.Discovery, cfg.GossipInterval, cfg.GossipMaxBytes = *discovery, *gossipInterval, *gossipMax
	cfg.Net.Latency, cfg.Net.Jitter, cfg.Net.Loss, cfg.Net.Bandwidth = *latency, *jitter, *loss, *bandwidth
	cfg.Share = !*noShare
	cfg.SelectionOnly = *selectionOnly
	cfg.Grind, cfg.GrindPool, cfg.GrindSearch, cfg.GrindInsiders = *grind, *grindPool, *grindSearch, *grindInsiders
	cfg.Timeout = *timeout
	cfg.Progress = os.Stderr

	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr); err != nil {
			return err
		}
	}
	if *memLimit > 0 {
		if total := physicalMemory(); total > 0 {
			debug.SetMemoryLimit(int64(*memLimit * float64(total)))
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		path := *memProfile
		cfg.BeforeStop = func() {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "tarzan sim: heap profile: %v\n", err)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		// The first interrupt stops the run and reports what it has
		// (stopping thousands of nodes takes a while); a second one
		// kills the process.
		<-ctx.Done()
		stop()
	}()
	r, runErr := sim.Run(ctx, cfg)
	if r == nil {
		return runErr
	}
	if runErr != nil {
		r.Notes = append(r.Notes, "incomplete: "+runErr.Error())
	}
	if *plot != "" {
		if err := simplot.Write(*plot, r); err != nil {
			return fmt.Errorf("drawing %s: %w", *plot, err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.WriteTable(os.Stdout)
	}
	return runErr
}

// servePprof serves the profiler on a loopback address only: it exposes
// the process's memory.
func servePprof(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("--pprof %q: want a loopback address and port, like 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	go http.Serve(ln, mux)
	fmt.Fprintf(os.Stderr, "tarzan sim: profiler at http://%s/debug/pprof/\n", ln.Addr())
	return nil
}

// physicalMemory is the machine's RAM in bytes (0 if unknown).
func physicalMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}
