package main

import (
	"context"
	"encoding/json"
	"flag"
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

// simOptions are `tarzan sim`'s flags that are not sim.Config fields.
type simOptions struct {
	asJSON, noShare                         bool
	plot, cpuProfile, memProfile, pprofAddr string
	memLimit, churnPct                      float64
}

// `tarzan sim` runs N real nodes in this process on the simulated network
// (sim/simnet) and reports convergence, handshakes, tunnels, memory, churn
// and the Sybil shares; see package sim.
func runSim(args []string) error {
	cfg, o, err := parseSimFlags(args)
	if err != nil {
		return err
	}
	stopProfiles, err := simProfiles(&cfg, o)
	if err != nil {
		return err
	}
	defer stopProfiles()
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
	if o.plot != "" {
		if err := simplot.Write(o.plot, r); err != nil {
			return fmt.Errorf("drawing %s: %w", o.plot, err)
		}
	}
	if !o.asJSON {
		r.WriteTable(os.Stdout)
		return runErr
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	return runErr
}

func parseSimFlags(args []string) (sim.Config, *simOptions, error) {
	fs := newFlags("sim", "sim --nodes N [--json] [--seed S] [--k 6] [--hops 3] [--tunnels T]\n"+
		"           [--churn X] [--sybil-nodes M --sybil-domains D] [--plot FILE.png]\n\n"+
		"Runs N nodes of the real core in one process on an in-memory network,\n"+
		"waits for full membership (gossip from one bootstrap address), builds\n"+
		"tunnels and reports. A progress line goes to stderr.")
	cfg, o := sim.DefaultConfig(), &simOptions{}
	simNetworkFlags(fs, &cfg, o)
	simRunFlags(fs, &cfg, o)
	if err := parseFlags(fs, args); err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 || cfg.Nodes < 2 {
		fs.Usage()
		return cfg, nil, errUsage
	}
	cfg.Churn = o.churnPct / 100
	cfg.Share = !o.noShare
	cfg.Progress = os.Stderr
	return cfg, o, nil
}

// simNetworkFlags bind the flags that shape the simulated network.
func simNetworkFlags(fs *flag.FlagSet, cfg *sim.Config, o *simOptions) {
	def := sim.DefaultConfig()
	fs.IntVar(&cfg.Nodes, "nodes", def.Nodes, "honest nodes")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of identities, addresses and the network's random choices")
	fs.IntVar(&cfg.K, "k", def.K, "mimics chosen per node")
	fs.IntVar(&cfg.Hops, "hops", def.Hops, "tunnel length (1..4)")
	fs.IntVar(&cfg.Tunnels, "tunnels", def.Tunnels, "tunnels to build after convergence")
	fs.Float64Var(&o.churnPct, "churn", 0, "percent of nodes that leave and join per epoch")
	fs.IntVar(&cfg.ChurnEpochs, "churn-epochs", 3, "epochs of churn")
	fs.DurationVar(&cfg.EpochLength, "epoch", 0, "epoch length (default 24h, 30s with --churn)")
	fs.IntVar(&cfg.SybilNodes, "sybil-nodes", 0, "adversary nodes")
	fs.IntVar(&cfg.SybilDomains, "sybil-domains", 0, "/16s the adversary nodes are in (default 1)")
	fs.IntVar(&cfg.Domains, "domains", 0, "/16s the honest nodes are spread over (default nodes/2)")
	fs.IntVar(&cfg.PerMid, "per-24", 1, "honest nodes per /24")
	fs.StringVar(&cfg.Discovery, "discovery", "gossip", "gossip (one bootstrap address) or static (every address)")
	fs.DurationVar(&cfg.GossipInterval, "gossip-interval", def.GossipInterval, "gossip round interval (default 1s)")
	fs.IntVar(&cfg.GossipMaxBytes, "gossip-max-bytes", 256<<10, "gossip plugin's byte budget per round")
	fs.DurationVar(&cfg.Net.Latency, "latency", def.Net.Latency, "one-way link latency")
	fs.DurationVar(&cfg.Net.Jitter, "jitter", def.Net.Jitter, "extra uniform delay per datagram")
	fs.Float64Var(&cfg.Net.Loss, "loss", 0, "datagram loss probability")
	fs.Float64Var(&cfg.Net.Bandwidth, "bandwidth", def.Net.Bandwidth, "uplink bytes/s per node (0: unlimited)")
	fs.BoolVar(&o.noShare, "no-share", false, "do not share mimic tables and verified descriptors between nodes")
}

// simRunFlags bind the flags for the Sybil selection study, bounds,
// output and profiling.
func simRunFlags(fs *flag.FlagSet, cfg *sim.Config, o *simOptions) {
	fs.BoolVar(&cfg.SelectionOnly, "selection-only", false, "run no nodes: draw the Sybil shares on the full-membership mimic table of the same network")
	fs.IntVar(&cfg.Grind, "grind", 0, "with --selection-only and Sybils: each adversary node tries up to this many identities for the best mimic choices; reports shares per strategy and path rule")
	fs.IntVar(&cfg.GrindPool, "grind-pool", 0, "with --grind: the adversary also picks which of this many /16s (one node each) to show")
	fs.IntVar(&cfg.GrindInsiders, "grind-insiders", 0, "with --grind: the adversary also has one node in each of this many honest /16s")
	fs.DurationVar(&cfg.GrindSearch, "grind-search", 20*time.Second, "with --grind-pool: time the adversary searches for its best /16s, per path rule")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object on stdout instead of a table")
	fs.StringVar(&o.plot, "plot", "", "draw convergence (and Sybil) curves to this PNG file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file just before the nodes stop")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060) while running")
	fs.Float64Var(&o.memLimit, "mem-limit", 0.75, "soft heap limit as a share of physical memory (the collector works harder near it); 0: none")
}

// simProfiles starts what o asks for: the profiler server, the heap
// limit, a CPU profile (stopped by the function it returns) and a heap
// profile taken just before the nodes stop.
func simProfiles(cfg *sim.Config, o *simOptions) (func(), error) {
	if o.pprofAddr != "" {
		if err := servePprof(o.pprofAddr); err != nil {
			return nil, err
		}
	}
	if o.memLimit > 0 {
		if total := physicalMemory(); total > 0 {
			debug.SetMemoryLimit(int64(o.memLimit * float64(total)))
		}
	}
	if path := o.memProfile; path != "" {
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
	if o.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(o.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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
