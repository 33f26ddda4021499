// Package plugincheck serves and inspects plugins for `tarzan plugin`:
// it serves a shipped plugin to a parent node, lists what a configuration
// selects with each external file's pin, and verifies an external plugin
// executable by starting it the way a node does.
package plugincheck

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
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
