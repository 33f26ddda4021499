package localnet

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host/plugincheck"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// External is a transport plugin executable every node of a loopback
// network runs (`tarzan demo -transport PATH`), pinned by the SHA-256 the
// file had when the network was made.
type External struct {
	Path    string            // absolute
	SHA256  string            // hex
	Name    string            // what the plugin calls itself (Transport.Name())
	Options map[string]string // [transport.options] of every node
}

// ProbeTransport pins the transport plugin at path and starts it once,
// as a node would, to learn the name it registers (a node.toml names the
// plugin by it, and peers match addresses by it). The error says what is
// wrong with the file or the plugin before any node starts.
func ProbeTransport(path string, options map[string]string, log *slog.Logger) (*External, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum, err := plugincheck.FileSHA256(abs)
	if err != nil {
		return nil, fmt.Errorf("transport plugin %s: %w", path, err)
	}
	if options == nil {
		options = map[string]string{}
	}
	tr, err := transportplugin.Launch(pluginkit.Launcher{Path: abs, Checksum: sum, Logger: log, Name: filepath.Base(abs)}, options)
	if err != nil {
		return nil, fmt.Errorf("transport plugin %s: %w", path, err)
	}
	defer tr.Close()
	name := tr.Name()
	if name == "" {
		return nil, fmt.Errorf("transport plugin %s reports no name", path)
	}
	return &External{Path: abs, SHA256: sum, Name: name, Options: options}, nil
}

// plugin is e's [transport] plugin entry.
func (e *External) plugin() config.Plugin {
	opts := make(map[string]string, len(e.Options))
	for k, v := range e.Options {
		opts[k] = v
	}
	return config.Plugin{Name: e.Name, Path: e.Path, SHA256: e.SHA256, Options: opts}
}
