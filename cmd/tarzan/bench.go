package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/host/sidebyside"
	"github.com/tarzan-net/tarzan/host/transportbench"
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
	runs := fs.Int("runs", 3, "rounds of in and out of process in turn; rows are medians")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *frames <= 0 || *window <= 0 || *limit <= 0 || *runs <= 0 {
		fs.Usage()
		return errUsage
	}
	list, err := transportbench.Names(*names)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable to serve transports out of process: %w", err)
	}
	rep := transportbench.RunAll(list, transportbench.Config{Frames: *frames, Window: *window, Limit: *limit, Self: self, Runs: *runs})
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(os.Stdout)
}
