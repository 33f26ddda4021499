package socks

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [adapter.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "listen", Type: pluginkit.TypeAddrPort, Default: "127.0.0.1:1080", Help: "SOCKS5 address; loopback only unless allow_remote"},
	{Name: "allow_remote", Type: pluginkit.TypeBool, Default: "false", Help: "accept a non-loopback listen address (anyone who reaches the port can use your tunnels)"},
	{Name: "allow_loopback", Type: pluginkit.TypeBool, Default: "false", Help: "pass loopback destinations to the exit (demo networks on loopback)"},
	{Name: "address", Type: pluginkit.TypeString, List: true, Help: "the stacks' inner addresses (a prefix length is ignored); default the node's (100.64.0.2, fd7a:7a72:7a6e::2)"},
	{Name: "dns", Type: pluginkit.TypeAddr, List: true, Help: "resolver(s) inside the tunnel; default the first of tunnels.dns"},
	{Name: "isolate", Type: pluginkit.TypeString, List: true, Values: []string{"auth", "dest"}, Default: "auth", Help: `"auth": one group per SOCKS credentials; ["auth", "dest"]: also one per destination host`},
	{Name: "mtu", Type: pluginkit.TypeInt, Min: "1280", Max: "65535", Help: "inner MTU (default the node's, 1280)"},
	{Name: "idle_timeout", Type: pluginkit.TypeDuration, Min: "1ns", Default: "10m", Help: "close a group after this long without sessions"},
	{Name: "optimistic", Type: pluginkit.TypeBool, Default: "false", Help: "answer CONNECT with success before the connection through the tunnel is up (one local round trip less to the first byte; a failure then shows as a reset, not a reply code)"},
	{Name: "connect_timeout", Type: pluginkit.TypeDuration, Min: "1ns", Default: "30s", Help: "give up a CONNECT after this long"},
}}
