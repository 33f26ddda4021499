package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/plugincheck"
)

const pluginUsage = `Usage:
  tarzan plugin serve KIND NAME               serve a shipped plugin to a parent node (started by the node itself)
  tarzan plugin list [-v] [-c node.toml]      list the shipped plugins and their options, or the ones a config selects
  tarzan plugin verify PATH [-sha256 HEX]     start an external plugin as a node would; report its kind and protocol

Kinds: transport, discovery, cover, adapter.
`

// runPlugin implements `tarzan plugin serve|list|verify`.
func runPlugin(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, pluginUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "list":
		return runPluginList(args[1:])
	case "verify":
		return runPluginVerify(args[1:])
	case "serve":
		if len(args) != 3 {
			return fmt.Errorf("usage: tarzan plugin serve KIND NAME")
		}
		return plugincheck.Serve(args[1], args[2])
	default:
		return fmt.Errorf("unknown plugin subcommand %q (serve, list, verify)", args[0])
	}
}

// runPluginList implements `tarzan plugin list [-c node.toml]`.
func runPluginList(args []string) error {
	fs := newFlags("plugin list", "plugin list [-v] [-c node.toml]\n\n"+
		"Without -c: every plugin shipped in this binary, by kind, and its options\n"+
		"(-v: each option's type, default and help; 'tarzan validate' checks them).\n"+
		"With -c: the plugins the config selects, builtin or external, whether each\n"+
		"external file still matches its pinned SHA-256, and, if the node is running,\n"+
		"each plugin's process ID, restart count and own counters (from its control API).")
	cfgPath := fs.String("c", "", "a node.toml; list the plugins it selects")
	verbose := fs.Bool("v", false, "without -c: each shipped plugin's options with type, default and help")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *cfgPath == "" {
		plugincheck.WriteShipped(os.Stdout, *verbose)
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "KIND\tNAME\tSOURCE\tPATH\tSHA256\tON DISK\tRUNNING\tOPTIONS")
	for _, r := range plugincheck.Rows(cfg) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, r.Name, r.Source, r.Path, r.Pin, r.Disk, r.State, r.Options)
	}
	w.Flush()
	control.WritePluginCounters(os.Stdout, cfg.Node.DataDir)
	return nil
}

// runPluginVerify implements `tarzan plugin verify PATH [-sha256 HEX]`.
func runPluginVerify(args []string) error {
	fs := newFlags("plugin verify", "plugin verify PATH [-sha256 HEX] [-timeout 10s]\n\n"+
		"Starts the plugin executable PATH the way a node does (go-plugin handshake,\n"+
		"data channel on fd 3), reports which plugin kind it serves and which protocol\n"+
		"version it speaks, and stops it. With -sha256 the file must match first.\n"+
		"Exits non-zero on a checksum mismatch or a failed handshake.")
	pin := fs.String("sha256", "", "the pinned SHA-256 (64 hex digits) the file must match")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the handshake after this long")
	verbose := fs.Bool("v", false, "show go-plugin's and the plugin's log lines")
	// Flags may come before or after PATH.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	path := rest[0]
	if err := parseFlags(fs, rest[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	rep, err := plugincheck.Verify(path, *pin, *timeout, *verbose)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	return err
}
