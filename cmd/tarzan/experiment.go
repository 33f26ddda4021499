package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tarzan-net/tarzan/experiment"
)

// `tarzan experiment -c FILE.toml` runs a traffic-analysis sweep and
// writes results.json, report.md and plots; see package experiment and
// docs/EXPERIMENTS.md.
func runExperiment(args []string) error {
	fs := newFlags("experiment", "experiment -c FILE.toml [-o DIR]\n\n"+
		"Runs every combination of the file's cover policies (and their swept\n"+
		"options), workloads and network sizes on the deterministic data-plane\n"+
		"simulator, attacks each run with a global passive adversary, and writes\n"+
		"DIR/results.json, DIR/report.md and DIR/*.png. The same file and seed\n"+
		"give the same results.json. See docs/EXPERIMENTS.md and experiments/.")
	file := fs.String("c", "", "sweep file (TOML)")
	out := fs.String("o", "", "output directory (default experiment-NAME beside the file)")
	testbed := fs.Bool("testbed", false, "run on the network-namespace test bed with real node processes instead of the simulator")
	verbose := fs.Bool("v", false, "log plugin events to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *testbed {
		return fmt.Errorf("--testbed: not implemented yet; run the simulator (without --testbed) — the test bed sweep is tracked in the issue")
	}
	f, err := experiment.Load(*file)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(filepath.Dir(*file), "experiment-"+f.Name)
	}
	opts := experiment.Options{Progress: os.Stderr}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	began := time.Now()
	res, runErr := experiment.Sweep(f, opts)
	if res == nil || len(res.Runs) == 0 {
		return runErr
	}
	paths, err := experiment.Write(dir, res)
	for _, p := range paths {
		fmt.Println(p)
	}
	fmt.Fprintf(os.Stderr, "experiment: %d runs in %.1fs\n", len(res.Runs), time.Since(began).Seconds())
	if runErr != nil {
		return runErr
	}
	return err
}
