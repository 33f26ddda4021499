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
	c.RegisterFlags(fs)
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
