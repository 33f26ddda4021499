package kcp

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [transport.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "fec_data", Type: pluginkit.TypeInt, Min: "0", Max: "128", Default: "10", Help: "FEC data shards per group; 0 (with fec_parity 0) turns FEC off; both ends must agree"},
	{Name: "fec_parity", Type: pluginkit.TypeInt, Min: "0", Max: "128", Default: "3", Help: "FEC parity shards per group; 0 (with fec_data 0) turns FEC off; both ends must agree"},
	{Name: "nodelay", Type: pluginkit.TypeInt, Min: "0", Max: "1", Default: "1", Help: "1: the low-latency ARQ profile, 0: KCP's normal mode"},
	{Name: "interval", Type: pluginkit.TypeInt, Min: "10", Max: "5000", Default: "10", Help: "KCP update interval in milliseconds"},
	{Name: "window", Type: pluginkit.TypeInt, Min: "1", Max: "32768", Default: "256", Help: "send and receive window in segments"},
	{Name: "mtu", Type: pluginkit.TypeInt, Min: "576", Max: "1500", Default: "1452", Help: "largest UDP payload sent, bytes; must leave room for a link frame (with FEC 10+3, at least 1452)"},
	{Name: "queue", Type: pluginkit.TypeInt, Min: "1", Max: "65536", Default: "1024", Help: "datagrams waiting per peer before KCP"},
	{Name: "max_delay_ms", Type: pluginkit.TypeInt, Min: "1", Max: "60000", Default: "250", Help: "longest a datagram waits for the window, milliseconds"},
	{Name: "replace_after_ms", Type: pluginkit.TypeInt, Min: "0", Max: "3600000", Default: "15000", Help: "silence of a live session, milliseconds, after which a new session from its address replaces it (unset: idle_timeout_ms/4; keep it above the keepalive; 0 lets one spoofed packet take a link down)"},
	{Name: "idle_timeout_ms", Type: pluginkit.TypeInt, Min: "100", Max: "3600000", Default: "60000", Help: "silence after which a session is closed, milliseconds"},
}}
