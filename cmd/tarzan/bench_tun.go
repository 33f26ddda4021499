package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tarzan-net/tarzan/host/sidebyside/tunbench"
)

// `tarzan bench tun`: flags and output; host/sidebyside/tunbench measures.
func runBenchTUN(args []string) error {
	fs := newFlags("bench tun", "bench tun [flags]\n\nTarzan (3 hops) beside Yggdrasil (1 hop) through TUN in namespaces (root).")
	c := tunbench.Config{Progress: os.Stderr, Command: strings.Join(append([]string{"tarzan bench tun"}, args...), " ")}
	fs.IntVar(&c.Runs, "runs", 3, "interleaved runs per overlay")
	fs.IntVar(&c.Seconds, "t", 5, "iperf3 TCP seconds")
	fs.BoolVar(&c.Reverse, "R", false, "iperf3 -R in the TCP test: the server sends (a download through the TUN)")
	fs.IntVar(&c.Streams, "P", 1, "iperf3 -P in the TCP test: parallel streams, for every overlay alike")
	fs.IntVar(&c.Nodes, "nodes", 6, "Tarzan relay/exit nodes")
	fs.StringVar(&c.Baseline, "baseline", "yggdrasil", "yggdrasil, none (Tarzan alone) or tarzan:PATH (another build)")
	fs.BoolVar(&c.InProcess, "inprocess", false, "run Tarzan's plugins inside their nodes")
	fs.StringVar(&c.WorkDir, "work", "", "keep configs and logs in this directory")
	fs.StringVar(&c.NetnsPrefix, "netns-prefix", tunbench.NamePrefix, "start every namespace name with this (letters; runs with different prefixes never touch each other's)")
	fs.StringVar(&c.Binary, "bin", "", "tarzan executable the nodes run (default: this one)")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	} else if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
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
