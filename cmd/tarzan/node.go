package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/host/plugincheck"
	"github.com/tarzan-net/tarzan/internal/runtimecfg"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

var errUsage = errors.New("usage")

func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: tarzan %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

// runNode runs a node until SIGINT or SIGTERM, which shut it down
// cleanly (its control socket and control.addr removed); SIGHUP reloads
// node.toml (host.Reload says what it applied and what needs a restart).
// Package host opens its plugins, starts it and its control API, and
// tears it all down.
func runNode(args []string) error {
	fs := newFlags("node", "node -c node.toml\n\nGo runtime: TARZAN_NODE_GOMAXPROCS, TARZAN_PLUGIN_GOMAXPROCS (default 1), TARZAN_TIMERSLACK (children's); docs/OPERATING.md")
	cfgPath := fs.String("c", "node.toml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if err := plugincheck.CheckShipped(cfg); err != nil { // plugin names and options, with file and line
		return err
	}
	if err := runtimecfg.ApplyNode(); err != nil { // GOMAXPROCS; docs/OPERATING.md
		return err
	}
	log, level := host.NewLogger(os.Stderr, cfg.Node.LogFormat, cfg.Node.LogLevel)
	slog.SetDefault(log)
	// A last line of defence for plugin children if anything below panics.
	defer pluginkit.CleanupAll()
	// SIGHUP is caught before the node starts, so that it never kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := host.Start(ctx, cfg, host.Options{Logger: log, Level: level})
	if err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			h.Reload()
			continue
		case <-ctx.Done():
			log.Info("shutting down")
		case <-h.Done():
		}
		return h.Close()
	}
}
