package host

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/internal/runtimecfg"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// The plugin catalog: every plugin kind is opened by the one generic open
// below, so a builtin, in-process or external plugin of any kind is found,
// pinned and started the same way.
//
//   - a plugin with a path is an external executable pinned by SHA-256;
//   - otherwise it is shipped in this binary (plugins/builtin) and either
//     called in process (in_process = true) or served as a child by the
//     executable Options.Exe ("tarzan plugin serve KIND NAME").

// catalog opens plugins for one host.
type catalog struct {
	exe string // "" = os.Executable(), looked up only when a child is needed
	log *slog.Logger
}

// open returns cfg's plugin of kind. inproc is the kind's builtin
// registry; launch starts a child through the kind's gRPC client.
func open[T any, F ~func(map[string]string) (T, error)](c catalog, kind string, cfg config.Plugin,
	inproc map[string]F,
	launch func(pluginkit.Launcher, map[string]string) (T, error)) (T, error) {
	var zero T
	if cfg.Path == "" {
		f, ok := inproc[cfg.Name]
		if !ok {
			return zero, UnknownPlugin(kind, cfg.Name)
		}
		if cfg.InProcess {
			return f(cfg.Options)
		}
	}
	l, err := c.launcher(kind, cfg)
	if err != nil {
		return zero, err
	}
	v, err := launch(l, cfg.Options)
	// An external plugin whose Name() is not node.toml's name is named
	// wrongly somewhere; `tarzan validate` refuses it, the node warns.
	if n, ok := any(v).(interface{ Name() string }); err == nil && ok && cfg.Path != "" && n.Name() != cfg.Name && c.log != nil {
		c.log.Warn("plugin calls itself by another name than node.toml", "kind", kind, "node.toml", cfg.Name, "plugin", n.Name(), "path", cfg.Path)
	}
	return v, err
}

// launcher returns how to start cfg's plugin as a child process.
func (c catalog) launcher(kind string, cfg config.Plugin) (pluginkit.Launcher, error) {
	rt, err := runtimecfg.Plugin(cfg.Name, nil)
	if err != nil {
		return pluginkit.Launcher{}, err
	}
	if cfg.Path != "" {
		return pluginkit.Launcher{Path: cfg.Path, Checksum: cfg.SHA256, Logger: c.log, Name: cfg.Name,
			Env: rt.Env(), TimerSlack: rt.TimerSlack}, nil
	}
	exe := c.exe
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return pluginkit.Launcher{}, fmt.Errorf("finding own executable to serve plugin %s/%s: %w", kind, cfg.Name, err)
		}
		exe = self
	}
	return pluginkit.Launcher{Path: exe, Args: ServeArgs(kind, cfg.Name), Logger: c.log, Name: cfg.Name,
		Env: rt.Env(), TimerSlack: rt.TimerSlack}, nil
}

// ServeArgs are the arguments that make the tarzan binary (Options.Exe)
// serve its shipped plugin kind/name to a parent node.
func ServeArgs(kind, name string) []string {
	return []string{"plugin", "serve", kind, name}
}

// UnknownPlugin is the error for a name that is neither shipped nor
// given a path.
func UnknownPlugin(kind, name string) error {
	return fmt.Errorf("%s plugin %q is not shipped with this binary (shipped: %v); name an external one with path and sha256", kind, name, builtin.Names(kind))
}

// PluginStats reports a plugin's supervisor stats when it runs out of process.
func PluginStats(p any) (pluginkit.Stats, bool) {
	if r, ok := unwrapPlugin(p).(pluginkit.Reporter); ok {
		return r.PluginStats(), true
	}
	return pluginkit.Stats{}, false
}
