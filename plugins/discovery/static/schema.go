package static

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [discovery.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "peers", Type: pluginkit.TypeAddrPort, List: true, Help: `bootstrap peers, IP:port literals, e.g. ["192.0.2.1:7700", "[2001:db8::1]:7700"]`},
	{Name: "file", Type: pluginkit.TypeFile, Help: `a bootstrap file: one "IP:port" or "desc <base64>" per line, '#' comments`},
	{Name: "interval", Type: pluginkit.TypeDuration, Min: "1ns", Default: "30s", Help: "the shortest wait before the list is proposed again"},
	{Name: "stretch", Type: pluginkit.TypeBool, Default: "true", Help: "quiet rounds double the wait, up to 32 intervals; false proposes the list every interval"},
}}
