package sidebyside

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// CompareUsage is `tarzan bench compare -h`'s text before the flags.
const CompareUsage = `bench compare [-runs 3] [-size 100MiB] [-flows 16] [-flow-size 16MiB] [-json] [-baseline tor|none] [-inprocess]

Starts a private Tor network on loopback (3 directory authorities, 8 exits,
1 client: as many processes as Tarzan's 12 nodes; needs tor and tor-gencert,
e.g. apt-get install tor) and a Tarzan network of -nodes processes on
loopback, then runs the same workloads with an unmodified curl through each
one's SOCKS5 port to one local HTTP server, runs interleaved (Tor, Tarzan,
Tor, Tarzan, ...), and prints one table of medians and Tarzan ÷ Tor ratios.
Progress goes to stderr. Both networks are stopped at the end, on error and
on Ctrl-C.

Metrics (one sample per run; the table shows the median of the runs):
  SIZE through SOCKS      one fetch of -size bytes: MB/s (10^6 bytes/s)
  CPU-s per 100 MiB       user+system CPU of every overlay process (every tor;
                          every tarzan node and its plugin children) during
                          that fetch, from /proc, scaled to 100 MiB
  N flows, aggregate      -flows fetches of -flow-size at once: all bytes ÷
                          the wall time from the first start to the last end
  N flows, slowest/mean   the slowest fetch's own MB/s, the mean of them,
                          and slowest ÷ mean (fairness; 1 is perfectly fair).
                          curl sends no SOCKS credentials, so all flows may
                          share one circuit / tunnel group (Tor's default);
                          -isolate gives each flow its own SOCKS user
  1 KiB time to first byte  curl's time_starttransfer (SOCKS handshake,
                          stream setup, request, first byte), median of 20
  tunnel/circuit setup    Tarzan: the setup time node 1 reports for a 3-hop
                          tunnel built through its control API; Tor: from
                          EXTENDCIRCUIT 0 on the control port to the BUILT
                          event; median of 10 (a failed build is retried
                          and counted in a note)
  idle CPU                millicores (1/1000 of a core) used by the whole
                          network and by one relay
                          (Tarzan: node 2 with its plugins; Tor: one exit)
                          over -idle of quiet after each run's workloads
                          (resolution 10 ms of CPU: 1 millicore over 10 s;
                          an idle tor relay often shows 0, so use -idle 60s
                          to compare one relay)

-only setup,ttfb runs only those workloads (the table leaves out the
others), e.g. for A/B runs of the latency figures.

Without tor, -baseline none measures Tarzan alone (the BASE column stays
empty).
`

// CompareFlags registers compare's flags on fs with c's values as
// defaults; finish (after fs.Parse) converts the sizes into c.
func CompareFlags(fs *flag.FlagSet, c *CompareConfig) (finish func() error) {
	fs.IntVar(&c.Runs, "runs", c.Runs, "interleaved runs per overlay (the table shows medians over runs)")
	size := fs.String("size", sizeFlag(c.Size), "bytes of the bulk fetch (B, KiB, MiB, GiB, KB, MB, GB)")
	fs.IntVar(&c.Flows, "flows", c.Flows, "concurrent fetches")
	flowSize := fs.String("flow-size", sizeFlag(c.FlowSize), "bytes of each concurrent fetch")
	fs.StringVar(&c.Baseline, "baseline", c.Baseline, "tor (a private Tor network alongside) or none (Tarzan alone)")
	fs.BoolVar(&c.InProcess, "inprocess", c.InProcess, "run every Tarzan plugin inside its node (inprocess = true)")
	fs.BoolVar(&c.Isolate, "isolate", c.Isolate, "give each concurrent flow its own SOCKS user: its own Tor circuit, its own Tarzan isolation group")
	fs.Func("socks-option", "KEY=VALUE for Tarzan's socks adapter options (repeatable), e.g. optimistic=true", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		if c.SOCKS == nil {
			c.SOCKS = map[string]string{}
		}
		c.SOCKS[k] = v
		return nil
	})
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "Tarzan node processes")
	fs.StringVar(&c.Tor.Scheduler, "tor-scheduler", c.Tor.Scheduler, "every tor's cell scheduler: vanilla (writes at once; the default here, see docs/BENCH.md) or kist (tor's own default, which ticks every few ms)")
	fs.IntVar(&c.TTFBs, "ttfb-fetches", c.TTFBs, "1 KiB fetches per run for the time to first byte")
	fs.IntVar(&c.Setups, "setups", c.Setups, "tunnel/circuit builds per run")
	fs.DurationVar(&c.Idle, "idle", c.Idle, "quiet window for the idle CPU")
	fs.StringVar(&c.Only, "only", c.Only, "run only these workloads, comma-separated: setup, ttfb, bulk, flows, idle (e.g. -only setup,ttfb)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print the table as one JSON object on stdout")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "give up after this long (everything started is stopped)")
	fs.StringVar(&c.Exe, "exe", c.Exe, "the tarzan binary the nodes run (default: this one), e.g. an older build to compare")
	fs.StringVar(&c.Dir, "dir", c.Dir, "keep both networks' configs and logs here (default: a temp dir, removed)")
	return func() (err error) {
		if c.Exe == "" {
			if c.Exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the tarzan binary for the nodes: %w", err)
			}
		}
		if c.Size, err = ParseSize(*size); err != nil {
			return err
		}
		c.FlowSize, err = ParseSize(*flowSize)
		return err
	}
}

func sizeFlag(n int64) string { return strings.ReplaceAll(sizeName(n), " ", "") }

// CompareAndPrint runs Compare within c.Timeout, stopping early (and
// every process it started) on SIGINT or SIGTERM, and prints the table
// on w (text, or JSON with c.JSON).
func CompareAndPrint(c CompareConfig, w io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	t, err := Compare(ctx, c)
	if err != nil {
		return err
	}
	if c.JSON {
		return t.WriteJSON(w)
	}
	return t.WriteText(w)
}
