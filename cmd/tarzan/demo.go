package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// demoFlags are `tarzan demo`'s flags.
type demoFlags struct {
	nodes, tunnels, hops, pings, fetchSize int
	asJSON, keep, stay                     bool
	timeout                                time.Duration
	hold                                   context.Context // with stay: runs until this ends
	transportOpts                          localnet.KeyValues
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
func (f *demoFlags) report(res *localnet.DemoResult) error {
	if f.keep {
		res.Dir = f.dir
	}
	if f.asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	res.Print(os.Stdout)
	return nil
}

// demo starts the network in dir, builds the tunnels and fetches the file.
func demo(ctx context.Context, f *demoFlags, dir string, server *localnet.FileServer) (*localnet.DemoResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nw, err := localnet.StartLoopback(ctx, dir, exe, f.nodes, f.net, progress)
	if err != nil {
		return nil, err
	}
	defer nw.Stop()
	res := &localnet.DemoResult{Nodes: len(nw.Nodes), MembershipSeconds: nw.JoinedIn.Seconds(), PluginChildren: map[string]int{}}
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
		res.Tunnels = append(res.Tunnels, localnet.DemoTunnel{TunnelReply: *rep, MimicChainOK: nw.MimicChain(ctx, rep)})
	}
	if ip := f.net.IP; ip != nil {
		progress("fetching %d bytes from %s through SOCKS5 %s over a %d-hop tunnel", f.fetchSize, server.Addr, ip.SOCKS, f.hops)
		if res.Fetch, err = retry(ctx, 2, func() (*localnet.FetchResult, error) {
			return localnet.FetchViaSOCKSProgress(ctx, ip.SOCKS, server, ip.Alias, func(done, total int64) {
				progress("  %d of %d bytes (%d %%)", done, total, done*100/total)
			})
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

var errInterrupted = errors.New("interrupted") // a signal stopped the command after it cleaned up

// `tarzan testnet` is `tarzan demo -stay` with one tunnel.
func runTestnet(args []string) error {
	return runDemo(append([]string{"-stay", "-tunnels", "1"}, args...))
}
