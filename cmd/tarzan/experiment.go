package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/experiment"
	"github.com/tarzan-net/tarzan/experiment/testbed"
)

// `tarzan experiment -c FILE.toml` runs a traffic-analysis sweep and
// writes results.json, report.md and plots; see package experiment and
// docs/EXPERIMENTS.md.
func runExperiment(args []string) error {
	fs := newFlags("experiment", experiment.Usage)
	file := fs.String("c", "", "sweep file (TOML)")
	out := fs.String("o", "", "output directory (default experiment-NAME beside the file; experiment-NAME-testbed with --testbed)")
	useTestbed := fs.Bool("testbed", false, "run on the network-namespace test bed with real node processes instead of the simulator")
	tbNodes := fs.Int("testbed-nodes", 0, fmt.Sprintf("with --testbed: nodes per run, replacing network.nodes (at least %d; default network.nodes clamped to %d..%d)", testbed.MinNodes, testbed.MinNodes, testbed.DefaultMaxNodes))
	tbWork := fs.String("testbed-work", "", "with --testbed: keep every run's node configs, logs and packet captures in this directory")
	tbOut := fs.Bool("testbed-out-of-process", false, "with --testbed: run the nodes' plugins as child processes (the node default) instead of in process")
	verbose := fs.Bool("v", false, "log plugin events to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *useTestbed {
		// Refuse before reading anything else: root, ip and tcpdump.
		if err := testbed.Check(); err != nil {
			return err
		}
	}
	f, err := experiment.Load(*file)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(filepath.Dir(*file), "experiment-"+f.Name)
		if *useTestbed {
			dir += "-testbed"
		}
	}
	if *useTestbed {
		return runTestbed(f, dir, testbed.Options{Nodes: *tbNodes, WorkDir: *tbWork, OutOfProcess: *tbOut, Progress: os.Stderr})
	}
	return runSweep(f, dir, *verbose)
}

// runSweep runs the sweep on the simulator and writes its results.
func runSweep(f *experiment.File, dir string, verbose bool) error {
	opts := experiment.Options{Progress: os.Stderr}
	if verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	began := time.Now()
	res, runErr := experiment.Sweep(f, opts)
	return writeResults(dir, res, runErr, "runs", began)
}

// writeResults writes a sweep's results (the runs it completed) to dir,
// lists the files on stdout and returns the sweep's error first.
func writeResults(dir string, res *experiment.Results, runErr error, what string, began time.Time) error {
	if res == nil || len(res.Runs)+len(res.Failed) == 0 {
		return runErr
	}
	paths, err := experiment.Write(dir, res)
	for _, p := range paths {
		fmt.Println(p)
	}
	fmt.Fprintf(os.Stderr, "experiment: %d %s in %.1fs", len(res.Runs), what, time.Since(began).Seconds())
	if len(res.Failed) > 0 {
		fmt.Fprintf(os.Stderr, ", %d failed:", len(res.Failed))
		for _, f := range res.Failed {
			fmt.Fprintf(os.Stderr, " %d/%d (%s)", f.Run, f.Of, f.Policy)
		}
	}
	fmt.Fprintln(os.Stderr)
	if runErr != nil {
		return runErr
	}
	return err
}

// runTestbed runs the sweep on the network-namespace test bed and writes
// its results like the simulator's. Ctrl-C or SIGTERM stop the run in
// progress; its namespaces and processes are removed before returning.
func runTestbed(f *experiment.File, dir string, o testbed.Options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary = exe
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	res, runErr := testbed.Sweep(ctx, f, o)
	return writeResults(dir, res, runErr, "test bed runs", began)
}
