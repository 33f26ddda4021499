package dtls

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [transport.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "queue", Type: pluginkit.TypeInt, Min: "1", Max: "65536", Default: "1024", Help: "frames waiting per peer while its handshake runs"},
	{Name: "max_handshakes", Type: pluginkit.TypeInt, Min: "1", Max: "65536", Default: "256", Help: "DTLS handshakes in progress at once"},
	{Name: "handshake_timeout_ms", Type: pluginkit.TypeInt, Min: "100", Max: "600000", Default: "10000", Help: "give up a handshake after this many milliseconds"},
	{Name: "sndbuf", Type: pluginkit.TypeInt, Min: "1", Max: "1073741824", Default: "4194304", Help: "socket send buffer in bytes (best effort)"},
	{Name: "rcvbuf", Type: pluginkit.TypeInt, Min: "1", Max: "1073741824", Default: "4194304", Help: "socket receive buffer in bytes (best effort)"},
}}
