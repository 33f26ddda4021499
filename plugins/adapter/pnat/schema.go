package pnat

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [exit.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: OptIdleTimeout, Type: pluginkit.TypeDuration, Min: "1ns", Default: "2m", Help: "UDP, ICMP, DNS and idle mappings expire after this long"},
	{Name: OptTCPIdleTimeout, Type: pluginkit.TypeDuration, Min: "1ns", Default: "10m", Help: "TCP connections with no data either way expire after this long"},
	{Name: OptMaxFlows, Type: pluginkit.TypeInt, Min: "1", Default: "256", Help: "open flows per tunnel"},
	{Name: OptAllowLoopback, Type: pluginkit.TypeBool, Default: "false", Help: "lift the local-destination guard (tests only)"},
	{Name: OptDialTimeout, Type: pluginkit.TypeDuration, Min: "1ns", Default: "10s", Help: "outbound TCP connect timeout"},
	{Name: OptBind, Type: pluginkit.TypeAddr, Help: "local address for outgoing connections (default any)"},
	{Name: OptAlias, Type: pluginkit.TypeString, List: true, Help: `"A=B": dial B for connections to A (test networks)`},
	{Name: OptPolicy, Type: pluginkit.TypeString, Help: "deprecated: use exit.policy"},
	{Name: OptDNSAddr, Type: pluginkit.TypeString, Help: "deprecated: use tunnels.dns"},
}}
