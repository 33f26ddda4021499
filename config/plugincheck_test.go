package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

var udpLike = &pluginkit.Schema{Name: "udp", Options: []pluginkit.Option{
	{Name: "batch", Type: pluginkit.TypeInt, Min: "1", Max: "64", Help: "per call"},
}}

// inspectFake knows "udp" (with udpLike) and "quiet" (no schema, a note).
func inspectFake(sec string, p Plugin) PluginInfo {
	switch p.Name {
	case "udp":
		return PluginInfo{Schema: udpLike}
	case "quiet":
		return PluginInfo{Key: "path", Note: "options not checked"}
	}
	return PluginInfo{Problem: "no such plugin " + p.Name}
}

func TestCheckPluginsLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.toml")
	text := `[transport]
name = "udp"
extra = ["nope 127.0.0.1:0"]
[transport.options]
"bat ch" = "1"
batch = "65"

[discovery]
name = "quiet"
[discovery.options]
anything = "goes"

[cover]
name = "none"
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	notes, err := c.CheckPlugins(inspectFake)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	want := []string{
		path + `:3: transport.extra: element 1: no such plugin nope`,
		path + `:5: transport.options."bat ch": unknown option; udp takes batch`,
		path + `:6: transport.options.batch: 65 is out of range 1..64`,
		path + `:14: cover.name: no such plugin none`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Key != "transport.extra" {
		t.Errorf("first error %+v", e)
	}
	if len(notes) != 1 || notes[0] != path+":8: discovery.path: options not checked" {
		t.Errorf("notes %q", notes)
	}
}

// A Config built in code has no file: errors come without lines, and the
// adapter and exit are inspected only when the node runs them.
func TestCheckPluginsInCode(t *testing.T) {
	c := Default()
	c.Transport.Options = map[string]string{"batch": "x"}
	c.Discovery.Name, c.Cover.Name = "udp", "udp"
	var secs []string
	_, err := c.CheckPlugins(func(sec string, p Plugin) PluginInfo {
		secs = append(secs, sec)
		return inspectFake(sec, p)
	})
	if err == nil || err.Error() != `transport.options.batch: "x" is not an integer` {
		t.Errorf("error %v", err)
	}
	if strings.Join(secs, ",") != "transport,discovery,cover" {
		t.Errorf("inspected %v", secs)
	}
	c.Adapter.Name, c.Node.Exit = "udp", true
	secs = nil
	c.CheckPlugins(func(sec string, p Plugin) PluginInfo { secs = append(secs, sec); return PluginInfo{} })
	if strings.Join(secs, ",") != "transport,discovery,cover,adapter,exit" {
		t.Errorf("inspected %v", secs)
	}
}
