package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tarzan-net/tarzan/host/sidebyside/tunbench"
)

// `tarzan bench tun`: flags and output; host/sidebyside/tunbench measures.

func runBenchTUN(args []string) error {
	fs := newFlags("bench tun", "bench tun [-runs N] [-t SECS] [-baseline yggdrasil|none] [-json]\n\n"+
		"Tarzan (3 hops) beside Yggdrasil (1 hop) through TUN devices in network\n"+
		"namespaces it creates (root): iperf3 TCP, CPU-s per GB, UDP loss sweep, ping.")
	var c tunbench.Config
	fs.IntVar(&c.Runs, "runs", 3, "interleaved runs per overlay")
	fs.IntVar(&c.Seconds, "t", 5, "iperf3 TCP seconds")
	fs.IntVar(&c.Nodes, "nodes", 6, "Tarzan relay/exit nodes")
	fs.StringVar(&c.Baseline, "baseline", "yggdrasil", "yggdrasil, or none (Tarzan alone)")
	fs.BoolVar(&c.InProcess, "inprocess", false, "run Tarzan's plugins inside their nodes")
	fs.StringVar(&c.WorkDir, "work", "", "keep configs and logs in this directory")
	fs.StringVar(&c.Binary, "bin", "", "tarzan executable the nodes run (default: this one)")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || (c.Baseline != tunbench.BaselineYggdrasil && c.Baseline != tunbench.BaselineNone) {
		fs.Usage()
		return errUsage
	}
	c.MTU1280, c.Progress, c.Command = c.Baseline == tunbench.BaselineYggdrasil, os.Stderr, "tarzan bench tun "+strings.Join(args, " ")
	if c.Binary == "" {
		c.Binary, _ = os.Executable()
	}
	if c.Binary == "" {
		return fmt.Errorf("bench tun: cannot find its own executable")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tab, err := tunbench.Run(ctx, c)
	if len(tab.Metrics) > 0 && *asJSON {
		tab.WriteJSON(os.Stdout)
	} else if len(tab.Metrics) > 0 {
		tab.WriteText(os.Stdout)
	}
	return err
}
