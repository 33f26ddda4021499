package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// demoResult is what `tarzan demo --json` prints.
type demoResult struct {
	Nodes             int                   `json:"nodes"`
	MembershipSeconds float64               `json:"membership_seconds"`
	Tunnels           []demoTunnel          `json:"tunnels"`
	PluginChildren    map[string]int        `json:"plugin_children"` // node short ID → plugin child processes seen
	Fetch             *localnet.FetchResult `json:"fetch,omitempty"`
	Dir               string                `json:"dir,omitempty"`
}

// demoTunnel is a tunnel report plus the demo's check that consecutive hops are mutual mimics.
type demoTunnel struct {
	control.TunnelReply
	MimicChainOK bool `json:"mimic_chain_ok"`
}

// demoFlags are `tarzan demo`'s flags.
type demoFlags struct {
	nodes, tunnels, hops, pings, fetchSize int
	asJSON, keep, stay                     bool
	timeout                                time.Duration
	hold                                   context.Context // with stay: runs until this ends
	transportOpts                          keyValues
	dir                                    string // the network's directory (configs, keys, logs)
	net                                    localnet.Loopback
}

func parseDemoFlags(args []string) (*demoFlags, error) {
	f := &demoFlags{}
	fs := newFlags("demo", "demo [-nodes 12] [-tunnels 3] [-hops 3] [-json]")
	fs.IntVar(&f.nodes, "nodes", 12, "node processes to start (each on its own 127.N.0.1, so in its own /16)")
	fs.IntVar(&f.tunnels, "tunnels", 3, "tunnels to build from the first node")
	fs.IntVar(&f.hops, "hops", config.Default().Tunnels.Hops, "hops per tunnel")
	fs.IntVar(&f.pings, "pings", 5, "pings per hop (the median is reported)")
	fs.StringVar(&f.net.Cover, "cover", "none", "cover policy for every node (none, constant)")
	fs.StringVar(&f.net.Discovery, "discovery", "gossip", "how nodes find each other: gossip (from one bootstrap address) or static (every address listed)")
	fs.StringVar(&f.net.Transport, "transport", "udp", "transport of every node: udp, dtls, kcp, mixed (each node a different set; all share udp), or the path of a transport plugin executable (pinned by its SHA-256 at start)")
	fs.Var(&f.transportOpts, "transport-option", "KEY=VALUE for [transport.options] of every node (repeatable; with -transport PATH)")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object on stdout")
	fs.BoolVar(&f.keep, "keep", false, "keep the demo directory (configs, keys, logs) afterwards")
	fs.BoolVar(&f.stay, "stay", false, "leave the network running (print its SOCKS5 port and a curl line) until Ctrl-C")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up after this long")
	fs.IntVar(&f.fetchSize, "fetch-size", 4<<20, "bytes of the file fetched through SOCKS5 over a tunnel (0: no fetch)")
	return f, checkDemoFlags(fs, f, args)
}

func checkDemoFlags(fs *flag.FlagSet, f *demoFlags, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.nodes < f.hops+1 || f.nodes > 200 {
		return fmt.Errorf("-nodes must be between hops+1 and 200")
	}
	if f.stay && f.fetchSize <= 0 {
		return fmt.Errorf("-stay leaves a SOCKS5 client and a test server running, which -fetch-size 0 turns off: drop -fetch-size 0")
	}
	switch f.net.Transport {
	case "udp", "dtls", "kcp", "mixed":
		if len(f.transportOpts) > 0 {
			return fmt.Errorf("-transport-option is for a transport plugin given by path (-transport ./my-plugin)")
		}
		return nil
	}
	if !strings.ContainsRune(f.net.Transport, os.PathSeparator) {
		return fmt.Errorf("-transport %q: want udp, dtls, kcp, mixed, or the path of a transport plugin (./%s if it is in this directory)", f.net.Transport, f.net.Transport)
	}
	ext, err := localnet.ProbeTransport(f.net.Transport, f.transportOpts, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	progress("transport plugin %s: %q, sha256 %s", ext.Path, ext.Name, ext.SHA256)
	f.net.External = ext
	return nil
}

// keyValues is a repeatable KEY=VALUE flag.
type keyValues map[string]string

func (kv *keyValues) String() string { return fmt.Sprint(map[string]string(*kv)) }

func (kv *keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if *kv == nil {
		*kv = keyValues{}
	}
	(*kv)[k] = v
	return nil
}

func progress(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

func runDemo(args []string) error {
	f, err := parseDemoFlags(args)
	if err != nil {
		return err
	}
	// A signal (Ctrl-C, SIGTERM, a closed terminal's SIGHUP) stops every node and exits 130.
	base, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	f.hold = base
	ctx, cancel := context.WithTimeout(base, f.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "tarzan-demo-")
	if err != nil {
		return err
	}
	if !f.keep {
		defer os.RemoveAll(dir)
	}
	var server *localnet.FileServer
	if f.fetchSize > 0 {
		if server, err = localnet.StartFileServer(f.fetchSize); err != nil {
			return err
		}
		defer server.Close()
		if f.net.IP, err = localnet.NewIPService(server.Addr); err != nil {
			return err
		}
	}
	f.dir = dir
	res, err := demo(ctx, f, dir, server)
	if base.Err() != nil {
		// A signal: with -stay the way to stop, its report already out.
		return errInterrupted
	}
	if err != nil {
		return fmt.Errorf("%w (logs in %s; rerun with -keep to inspect)", err, dir)
	}
	return f.report(res)
}

// report prints res on stdout, as JSON with -json.
func (f *demoFlags) report(res *demoResult) error {
	if f.keep {
		res.Dir = f.dir
	}
	if f.asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printDemo(res)
	return nil
}

// demo starts the network in dir, builds the tunnels and fetches the file.
func demo(ctx context.Context, f *demoFlags, dir string, server *localnet.FileServer) (*demoResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nw, err := localnet.StartLoopback(ctx, dir, exe, f.nodes, f.net, progress)
	if err != nil {
		return nil, err
	}
	defer nw.Stop()
	res := &demoResult{Nodes: len(nw.Nodes), MembershipSeconds: nw.JoinedIn.Seconds(), PluginChildren: map[string]int{}}
	for _, n := range nw.Nodes {
		res.PluginChildren[n.ID.Short()] = n.Children()
	}
	for i := range f.tunnels {
		progress("building tunnel %d/%d from %s", i+1, f.tunnels, nw.Nodes[0].ID.Short())
		rep, err := retry(ctx, 3, func() (*control.TunnelReply, error) {
			return nw.Nodes[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: f.hops, Pings: f.pings})
		})
		if err != nil {
			return nil, fmt.Errorf("building tunnel %d: %w", i+1, err)
		}
		res.Tunnels = append(res.Tunnels, demoTunnel{TunnelReply: *rep, MimicChainOK: nw.MimicChain(ctx, rep)})
	}
	if ip := f.net.IP; ip != nil {
		progress("fetching %d bytes from %s through SOCKS5 %s over a %d-hop tunnel", f.fetchSize, server.Addr, ip.SOCKS, f.hops)
		if res.Fetch, err = retry(ctx, 2, func() (*localnet.FetchResult, error) {
			return localnet.FetchViaSOCKS(ctx, ip.SOCKS, server, ip.Alias)
		}); err != nil {
			return nil, err
		}
		res.Fetch.ClientAddr = nw.Nodes[0].Addr().Addr().String()
		if f.stay {
			if err := f.report(res); err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "\n%d nodes running in %s. Try:\n  curl --socks5 %s http://%s/file -o /dev/null\nCtrl-C stops them.\n", len(nw.Nodes), dir, ip.SOCKS, ip.Alias)
			<-f.hold.Done()
		}
	}
	return res, nil
}

// retry calls f until it succeeds, at most 1+retries times.
func retry[T any](ctx context.Context, retries int, f func() (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := f()
		if err == nil || attempt >= retries || ctx.Err() != nil {
			return v, err
		}
		progress("  retrying: %v", err)
	}
}

func printDemo(res *demoResult) {
	fmt.Printf("%d nodes joined and linked to their mimics in %.1f s\n", res.Nodes, res.MembershipSeconds)
	for i, t := range res.Tunnels {
		fmt.Printf("\ntunnel %d: setup %.2f ms, consecutive hops mutual mimics: %v\n", i+1, t.SetupMS, t.MimicChainOK)
		fmt.Printf("  %-4s %-9s %-18s %-15s %s\n", "hop", "id", "addr", "domain", "rtt (median)")
		for j, h := range t.Hops {
			fmt.Printf("  %-4d %-9s %-18s %-15s %.3f ms\n", j+1, h.ID, h.Addr, h.Domain, h.RTTMS)
		}
	}
	if f := res.Fetch; f != nil {
		fmt.Printf("\nfetched %s through SOCKS5: %d bytes in %.2f s (%.1f Mbit/s), sha256 match: %v\n", f.URL, f.Bytes, f.Seconds, f.MBitPerSec, f.SHA256Match)
		fmt.Printf("the server saw %s (an exit); the client is %s\n", f.ServerSaw, f.ClientAddr)
	}
	counts := slices.Sorted(maps.Values(res.PluginChildren))
	fmt.Printf("\nplugin child processes per node: %d to %d\n", counts[0], counts[len(counts)-1])
}

var errInterrupted = errors.New("interrupted") // a signal stopped the command after it cleaned up

// `tarzan testnet` is `tarzan demo -stay` with one tunnel.
func runTestnet(args []string) error {
	return runDemo(append([]string{"-stay", "-tunnels", "1"}, args...))
}
