package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// One factory for builtin and external plugins: a plugin with a path is
// an external executable pinned by SHA-256; otherwise it is a shipped one,
// either called in process or served by this binary as a child.

// launcher returns how to start cfg's plugin as a child process.
func launcher(kind string, cfg config.Plugin, log *slog.Logger) (pluginkit.Launcher, error) {
	if cfg.Path != "" {
		return pluginkit.Launcher{Path: cfg.Path, Checksum: cfg.SHA256, Logger: log, Name: cfg.Name}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return pluginkit.Launcher{}, fmt.Errorf("finding own executable to serve plugin %s/%s: %w", kind, cfg.Name, err)
	}
	return pluginkit.Launcher{Path: self, Args: []string{"plugin", "serve", kind, cfg.Name}, Logger: log, Name: cfg.Name}, nil
}

func unknownPlugin(kind, name string) error {
	return fmt.Errorf("%s plugin %q is not shipped with this binary (shipped: %v); name an external one with path and sha256", kind, name, builtin.Names(kind))
}

func openTransport(cfg config.Plugin, log *slog.Logger) (transport.Transport, error) {
	if cfg.Path == "" {
		f, ok := builtin.Transports[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindTransport, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindTransport, cfg, log)
	if err != nil {
		return nil, err
	}
	return transportplugin.Launch(l, cfg.Options)
}

func openDiscovery(cfg config.Plugin, log *slog.Logger) (discovery.Discovery, error) {
	if cfg.Path == "" {
		f, ok := builtin.Discoveries[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindDiscovery, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindDiscovery, cfg, log)
	if err != nil {
		return nil, err
	}
	return discoveryplugin.Launch(l, cfg.Options)
}

func openCover(cfg config.Plugin, log *slog.Logger) (cover.Policy, error) {
	if cfg.Path == "" {
		f, ok := builtin.Covers[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindCover, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindCover, cfg, log)
	if err != nil {
		return nil, err
	}
	return coverplugin.Launch(l, cfg.Options)
}

func openAdapter(cfg config.Plugin, log *slog.Logger) (adapter.Adapter, error) {
	if cfg.Path == "" {
		f, ok := builtin.Adapters[cfg.Name]
		if !ok {
			return nil, unknownPlugin(builtin.KindAdapter, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := launcher(builtin.KindAdapter, cfg, log)
	if err != nil {
		return nil, err
	}
	return adapterplugin.Launch(l, cfg.Options)
}

// pluginStats reports a plugin's supervisor stats when it runs out of process.
func pluginStats(p any) (pluginkit.Stats, bool) {
	if r, ok := p.(pluginkit.Reporter); ok {
		return r.PluginStats(), true
	}
	return pluginkit.Stats{}, false
}

// runPlugin implements `tarzan plugin serve KIND NAME` and `tarzan plugin list`.
func runPlugin(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(os.Stderr, `Usage:
  tarzan plugin serve KIND NAME   serve a shipped plugin to a parent node (started by the node itself)
  tarzan plugin list              list the shipped plugins

Kinds: transport, discovery, cover, adapter.
`)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "list":
		for _, kind := range []string{builtin.KindTransport, builtin.KindDiscovery, builtin.KindCover, builtin.KindAdapter} {
			names := builtin.Names(kind)
			sort.Strings(names)
			for _, n := range names {
				fmt.Printf("%-10s %-10s builtin\n", kind, n)
			}
		}
		return nil
	case "serve":
		if len(args) != 3 {
			return fmt.Errorf("usage: tarzan plugin serve KIND NAME")
		}
		kind, name := args[1], args[2]
		switch kind {
		case builtin.KindTransport:
			f, ok := builtin.Transports[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			transportplugin.Serve(f)
		case builtin.KindDiscovery:
			f, ok := builtin.Discoveries[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			discoveryplugin.Serve(f)
		case builtin.KindCover:
			f, ok := builtin.Covers[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			coverplugin.Serve(f)
		case builtin.KindAdapter:
			f, ok := builtin.Adapters[name]
			if !ok {
				return unknownPlugin(kind, name)
			}
			adapterplugin.Serve(f)
		default:
			return fmt.Errorf("unknown plugin kind %q (transport, discovery, cover, adapter)", kind)
		}
		return nil
	default:
		return fmt.Errorf("unknown plugin subcommand %q (serve, list)", args[0])
	}
}
