// Package plugincheck serves and inspects plugins for `tarzan plugin`:
// it serves a shipped plugin to a parent node, lists what a configuration
// selects with each external file's pin, and verifies an external plugin
// executable by starting it the way a node does.
package plugincheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// Serve serves the shipped plugin kind/name to the parent node on stdin
// and stdout (go-plugin) until the parent goes; it returns only on an
// unknown kind or name.
func Serve(kind, name string) error {
	switch kind {
	case builtin.KindTransport:
		return serve(kind, name, builtin.Transports, transportplugin.Serve)
	case builtin.KindDiscovery:
		return serve(kind, name, builtin.Discoveries, discoveryplugin.Serve)
	case builtin.KindCover:
		return serve(kind, name, builtin.Covers, coverplugin.Serve)
	case builtin.KindAdapter:
		return serve(kind, name, builtin.Adapters, adapterplugin.Serve)
	}
	return fmt.Errorf("unknown plugin kind %q (transport, discovery, cover, adapter)", kind)
}

func serve[F any](kind, name string, registry map[string]F, serve func(F)) error {
	f, ok := registry[name]
	if !ok {
		return host.UnknownPlugin(kind, name)
	}
	if s := builtin.Schema(kind, name); s != nil {
		pluginkit.Declare(*s) // a describe request answers with it
	}
	serve(f)
	return nil
}

// Selected is one plugin a configuration makes a node run.
type Selected struct {
	Kind     string // as the control API names it: transport ... adapter, exit
	Registry string // builtin kind the name is looked up in
	Config   config.Plugin
}

// SelectedBy is what cfg makes a node run, in start order.
func SelectedBy(cfg *config.Config) []Selected {
	out := []Selected{
		{builtin.KindTransport, builtin.KindTransport, cfg.Transport.Plugin},
		{builtin.KindDiscovery, builtin.KindDiscovery, cfg.Discovery},
		{builtin.KindCover, builtin.KindCover, cfg.Cover.Plugin},
	}
	if cfg.Adapter.Name != "" || cfg.Adapter.Path != "" {
		out = append(out, Selected{builtin.KindAdapter, builtin.KindAdapter, cfg.Adapter})
	}
	if cfg.Node.Exit {
		out = append(out, Selected{"exit", builtin.KindAdapter, cfg.Exit.Plugin})
	}
	return out
}

// Shipped says whether this binary ships plugin kind/name.
func Shipped(kind, name string) bool {
	return slices.Contains(builtin.Names(kind), name)
}

// CheckPin says whether the file at path has the SHA-256 pin.
func CheckPin(path, pin string) string {
	sum, err := FileSHA256(path)
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case strings.EqualFold(sum, pin):
		return "matches"
	default:
		return "MISMATCH (have " + sum + ")"
	}
}

// FileSHA256 is the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Running asks cfg's node, if it runs, for its plugins by kind.
// Otherwise it says why not, for the RUNNING column.
func Running(cfg *config.Config) (map[string]control.PluginReply, string) {
	c, err := control.ClientForDir(cfg.Node.DataDir, nil) // address and, on TCP, cookie
	if err != nil {
		return nil, "node not running"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return nil, "node not answering"
	}
	out := make(map[string]control.PluginReply, len(st.Plugins))
	for _, p := range st.Plugins {
		out[p.Kind] = p
	}
	return out, "not running"
}

// Row is one line of `tarzan plugin list -c`: a selected plugin, where
// it comes from, its pin and whether the file matches it, and its state
// in the running node.
type Row struct {
	Kind, Name, Source, Path, Pin, Disk, State string
	Options                                    string // as set in node.toml, "k=v k=v" sorted; "-" if none
}

// Rows describes the plugins cfg selects, in start order, asking the
// node for their state if it runs.
func Rows(cfg *config.Config) []Row {
	running, why := Running(cfg)
	var rows []Row
	for _, sel := range SelectedBy(cfg) {
		p := sel.Config
		r := Row{Kind: sel.Kind, Name: p.Name, Source: "builtin", Path: "-", Pin: "-", Disk: "-", State: why, Options: optionList(p.Options)}
		switch {
		case p.Path != "":
			r.Source, r.Path, r.Pin = "external", p.Path, strings.ToLower(p.SHA256)
			r.Disk = CheckPin(p.Path, p.SHA256)
		case !Shipped(sel.Registry, p.Name):
			r.Source = "unknown (not shipped, no path)"
		case p.InProcess:
			r.Source = "builtin, in process"
		}
		if st, ok := running[sel.Kind]; ok {
			switch {
			case st.InProc:
				r.State = "in the node process"
			case st.PID != 0:
				r.State = fmt.Sprintf("pid %d, %d restarts", st.PID, st.Restarts)
			default:
				r.State = fmt.Sprintf("restarting (%d restarts)", st.Restarts)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// optionList is opts as "k=v k=v", sorted by key, or "-".
func optionList(opts map[string]string) string {
	if len(opts) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + opts[k]
	}
	return strings.Join(keys, " ")
}
