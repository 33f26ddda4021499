package config

import (
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// PluginInfo is what the caller of CheckPlugins learnt about the plugin a
// section selects (config itself knows no plugin: host/plugincheck looks
// up the shipped ones and asks external binaries to describe themselves).
type PluginInfo struct {
	// Schema is the plugin's declared options; nil: they are not known,
	// and the options are not checked.
	Schema *pluginkit.Schema
	// Problem, if set, is why the node could not run this plugin (an
	// unknown name, a binary of another kind or under another name, a
	// pin that does not match); it is reported at <section>.<Key>.
	Problem string
	Key     string // "name", "path" or "sha256"; "" = "name"
	// Note is a warning that does not fail the check (e.g. options not
	// described); reported at <section>.<Key> too.
	Note string
}

// PluginSections are the sections whose plugin c makes a node run, in
// start order: transport, discovery, cover, then adapter if named, and
// exit if node.exit.
func (c *Config) PluginSections() []string {
	out := []string{"transport", "discovery", "cover"}
	if c.Adapter.Name != "" || c.Adapter.Path != "" {
		out = append(out, "adapter")
	}
	if c.Node.Exit {
		out = append(out, "exit")
	}
	return out
}

// PluginIn returns the plugin configured in section sec, or nil.
func (c *Config) PluginIn(sec string) *Plugin {
	switch sec {
	case "transport":
		return &c.Transport.Plugin
	case "discovery":
		return &c.Discovery
	case "cover":
		return &c.Cover.Plugin
	case "adapter":
		return &c.Adapter
	case "exit":
		return &c.Exit.Plugin
	}
	return nil
}

// CheckPlugins checks every plugin c makes a node run with what inspect
// says of it: its name, its file and each of its options (unknown key,
// wrong type or range, a file that is not there), each problem at the
// file, line and key it comes from, wrapping ErrInvalid like Load's.
// transport.extra's names are inspected as section "transport.extra",
// with no options. The notes are warnings, formatted like errors.
//
// Lines are found by reading c.File again; a Config built in code gets
// errors without lines.
func (c *Config) CheckPlugins(inspect func(sec string, p Plugin) PluginInfo) (notes []string, err error) {
	v := &checker{file: c.File}
	if c.File != "" {
		if data, err := os.ReadFile(c.File); err == nil {
			v.lines = scanKeyLines(data)
		}
	}
	var warn checker = *v
	for _, sec := range c.PluginSections() {
		p := c.PluginIn(sec)
		info := inspect(sec, *p)
		key := sec + "." + keyOr(info.Key)
		if info.Problem != "" {
			v.fail(key, "%s", info.Problem)
			continue
		}
		if info.Note != "" {
			warn.fail(key, "%s", info.Note)
		}
		if info.Schema == nil {
			continue
		}
		for _, e := range info.Schema.Problems(p.Options) {
			k := sec + ".options." + toml.Key{e.Key}.String()
			v.failAt(k, k, "%s", e.Msg)
		}
	}
	for i, e := range c.Transport.Extra {
		info := inspect("transport.extra", Plugin{Name: e.Name, Options: map[string]string{}})
		if info.Problem != "" {
			v.fail("transport.extra", "element %d: %s", i+1, info.Problem)
		}
	}
	for _, e := range warn.errs {
		notes = append(notes, e.Error())
	}
	return notes, v.err()
}

func keyOr(k string) string {
	if k == "" {
		return "name"
	}
	return strings.TrimPrefix(k, ".")
}
