package pt

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [transport.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "binary", Type: pluginkit.TypeCommand, Default: "obfs4proxy", Help: "the PT executable, a path or a name looked up in PATH (Debian: apt-get install obfs4proxy)"},
	{Name: "method", Type: pluginkit.TypeString, Default: "obfs4", Help: "the PT method, e.g. obfs4"},
	{Name: "state_dir", Type: pluginkit.TypeString, Help: "TOR_PT_STATE_LOCATION, created 0700; keeps the server's keys (obfs4's cert) across restarts. Unset: a temporary directory (a new cert at every start)"},
	{Name: "server_options", Type: pluginkit.TypeString, Help: "k=v;k=v handed to the PT server, e.g. iat-mode=1"},
	{Name: "advertise", Type: pluginkit.TypeAddrPort, Help: "the address our hello names (default: the bound one)"},
	{Name: "peers", Type: pluginkit.TypeString, Help: `"ADDR ARGS; ADDR ARGS": each peer's PT arguments`},
	{Name: "peers_file", Type: pluginkit.TypeString, Help: `a file of "ADDR ARGS" lines, read again whenever a peer without arguments is dialled (it may appear later)`},
}}
