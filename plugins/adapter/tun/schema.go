package tun

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [adapter.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "name", Type: pluginkit.TypeString, Default: "tarzan0", Help: "device name, 1..15 characters"},
	{Name: "address", Type: pluginkit.TypePrefix, AllowEmpty: true, Default: "100.64.0.2/10", Help: `IPv4 address with prefix; "" for none`},
	{Name: "address6", Type: pluginkit.TypePrefix, AllowEmpty: true, Default: "fd7a:7a72:7a6e::2/64", Help: `IPv6 address with prefix; "" for none`},
	{Name: "dns", Type: pluginkit.TypeAddr, List: true, Help: "resolver(s) inside the tunnel (default tunnels.dns); pointing the system resolver at it is left to you"},
	{Name: "routes", Type: pluginkit.TypePrefix, List: true, Default: "0.0.0.0/0,::/0", Help: "what to send into the tunnel"},
	{Name: "mtu", Type: pluginkit.TypeInt, Min: "1280", Max: "65535", Help: "device MTU (default the node's, 1280)"},
	{Name: "state_dir", Type: pluginkit.TypeString, Default: "/run/tarzan", Help: "where the crash-safety state file lives"},
}}
