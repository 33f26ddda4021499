package config

// Keys for operating a node (issue 13): the control socket, log format,
// pprof and the Prometheus endpoint. They live here rather than in
// schema.go so that they read as one piece; init appends them to the
// schema.

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// ControlUnix is node.control's value for a Unix socket in the data
// directory (control.sock), the default: only this user can connect.
const ControlUnix = "unix"

// Metrics is the [metrics] section: a Prometheus endpoint, off unless
// Listen is set.
type Metrics struct {
	Listen      string // "IP:port" of GET /metrics; "" = off
	AllowRemote bool   // permit a non-loopback Listen
}

var logFormats = []string{"text", "json"}

func init() {
	for i := range schema {
		if schema[i].name == "node" {
			schema[i].fields = append(schema[i].fields, observeNodeFields...)
		}
	}
	schema = append(schema, metricsSection)
}

var observeNodeFields = []field{
	stringField("node.log_format", func(c *Config) *string { return &c.Node.LogFormat },
		"text (key=value lines) or json (one JSON object a line, for log\n"+
			"collectors). A change takes a restart; log_level changes on SIGHUP."),
	boolField("node.pprof", func(c *Config) *bool { return &c.Node.PProf },
		"Serve Go's profiles (/debug/pprof/) on the control API, for `go tool\n"+
			"pprof`. Off by default; only the control API's owner can reach them."),
}

var metricsSection = section{name: "metrics", doc: "Prometheus metrics: per-link traffic (peers by short ID only), tunnels,\ndrops by reason, plugin restarts and counters (docs/OPERATING.md). The\ncontrol API serves the same at /metrics.", fields: []field{
	stringField("metrics.listen", func(c *Config) *string { return &c.Metrics.Listen },
		"Address (IP:port) of a plain HTTP endpoint serving GET /metrics for a\n"+
			"Prometheus scraper; \"\" (the default) serves none. A loopback address\n"+
			"unless allow_remote = true."),
	boolField("metrics.allow_remote", func(c *Config) *bool { return &c.Metrics.AllowRemote },
		"Permit a non-loopback metrics.listen. The metrics carry no addresses or\n"+
			"full IDs, but traffic volumes over time help a traffic analyst: expose\n"+
			"them only to a scraper you trust."),
}}

// ControlListen is the address the control API binds: "unix:PATH" for a
// Unix socket (node.control = "unix", in the data directory, or
// "unix:PATH"), else node.control itself.
func (n *Node) ControlListen() string {
	if n.Control == ControlUnix {
		return "unix:" + filepath.Join(n.DataDir, "control.sock")
	}
	return n.Control
}

func (n *Node) validateObserve(v *checker) {
	if n.LogFormat != "" && !slices.Contains(logFormats, n.LogFormat) { // "" (a Node built in code): text
		v.fail("node.log_format", "%q is not one of text, json", n.LogFormat)
	}
}

// validateControl checks node.control: "unix", "unix:PATH" or a loopback
// IP:port (any IP:port with allow_remote_control).
func (n *Node) validateControl(v *checker) {
	if n.Control == ControlUnix {
		return
	}
	if p, ok := strings.CutPrefix(n.Control, "unix:"); ok {
		if p == "" {
			v.fail("node.control", `"unix:" names no socket: write "unix" for control.sock in the data directory, or "unix:/path/to.sock"`)
		}
		return
	}
	if ap, err := parseAddrPort(n.Control); err != nil {
		v.fail("node.control", `%v: want "unix" (a socket in the data directory), "unix:PATH" or a loopback IP:port`, err)
	} else if !ap.Addr().IsLoopback() && !n.AllowRemoteControl {
		v.fail("node.control", "%s is not a loopback address; the control API reveals this node's tunnels, so set node.allow_remote_control = true to expose it", ap.Addr())
	}
}

func (m *Metrics) validate(v *checker) {
	if m.Listen == "" {
		return
	}
	ap, err := netip.ParseAddrPort(m.Listen)
	switch {
	case err != nil:
		v.fail("metrics.listen", "%q is not a valid address:port (or \"\" for no endpoint)", m.Listen)
	case !ap.Addr().IsLoopback() && !m.AllowRemote:
		v.fail("metrics.listen", "%s is not a loopback address: set metrics.allow_remote = true to serve metrics to other hosts", ap.Addr())
	}
}
