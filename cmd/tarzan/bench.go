package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/host/sidebyside"
	"github.com/tarzan-net/tarzan/host/transportbench"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// `tarzan bench transports`: flags and output; host/transportbench
// measures (in process against out of process, same sender window).

func runBench(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, "Usage:\n  tarzan bench transports [-json] [-frames N] [-transports udp,dtls,kcp]\n  tarzan "+strings.SplitN(sidebyside.CompareUsage, "\n", 2)[0]+"\n  tarzan bench tun [-runs 3] [-baseline yggdrasil|none|tarzan:PATH] [-json]\n\nRun 'tarzan bench NAME -h' for its flags.\n")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "transports":
		return runBenchTransports(args[1:])
	case "compare":
		return runBenchCompare(args[1:])
	case "tun":
		return runBenchTUN(args[1:])
	}
	return fmt.Errorf("unknown bench %q (transports, compare, tun)", args[0])
}

// runBenchCompare: Tarzan beside a private Tor network (host/sidebyside).
func runBenchCompare(args []string) error {
	c := sidebyside.DefaultCompare()
	fs := newFlags("bench compare", sidebyside.CompareUsage)
	finish := sidebyside.CompareFlags(fs, &c)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	c.Progress, c.Command = progress, strings.Join(append([]string{"tarzan bench compare"}, args...), " ")
	return sidebyside.CompareAndPrint(c, os.Stdout)
}

func runBenchTransports(args []string) error {
	fs := newFlags("bench transports", "bench transports [-json] [-frames N] [-transports udp,dtls,kcp]\n\n"+
		"Frames/s and Mbit/s of 1408-byte frames over loopback for each shipped\n"+
		"transport, in process and out of process (as `tarzan plugin serve\n"+
		"transport NAME` children), with the same sender window in one run.")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of a table")
	frames := fs.Int("frames", 200_000, "frames per case")
	names := fs.String("transports", "udp,dtls,kcp", "comma-separated shipped transports to measure")
	window := fs.Int("window", transportbench.DefaultWindow, "most frames in flight from the sender")
	limit := fs.Duration("max", 10*time.Second, "time cap per case")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *frames <= 0 || *window <= 0 || *limit <= 0 {
		fs.Usage()
		return errUsage
	}
	var list []string
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := builtin.Transports[n]; !ok {
			return host.UnknownPlugin(builtin.KindTransport, n)
		}
		list = append(list, n)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable to serve transports out of process: %w", err)
	}
	cfg := transportbench.Config{Frames: *frames, Window: *window, Limit: *limit, Self: self}
	rep := transportbench.Report{FrameBytes: transport.MaxDatagram, Frames: cfg.Frames, Window: cfg.Window,
		CapSeconds: cfg.Limit.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for _, name := range list {
		in := transportbench.Run(name, "in-process", cfg)
		out := transportbench.Run(name, "out-of-process", cfg)
		if in.FramesPerSec > 0 && out.Error == "" {
			out.OutInRatio = out.FramesPerSec / in.FramesPerSec
		}
		rep.Cases = append(rep.Cases, in, out)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(rep)
	return nil
}

func printBench(rep transportbench.Report) {
	fmt.Printf("%d-byte frames over loopback, %d per case (cap %v), window %d, GOMAXPROCS %d\n",
		rep.FrameBytes, rep.Frames, time.Duration(rep.CapSeconds*float64(time.Second)), rep.Window, rep.GOMAXPROCS)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TRANSPORT\tMODE\tFRAMES/S\tMBIT/S\tLOSS %\tCPU µs/FRAME\tOUT/IN")
	for _, c := range rep.Cases {
		if c.Error != "" {
			fmt.Fprintf(w, "%s\t%s\terror: %s\n", c.Transport, c.Mode, c.Error)
			continue
		}
		ratio, mode := "", c.Mode
		if c.OutInRatio > 0 {
			ratio = fmt.Sprintf("%.0f %%", 100*c.OutInRatio)
		}
		if c.Capped {
			mode += " (time cap)"
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%s\n", c.Transport, mode, c.FramesPerSec, c.MbitPerSec, c.LossPct, c.CPUPerFrame, ratio)
	}
	w.Flush()
}
