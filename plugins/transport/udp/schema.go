package udp

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [transport.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "sndbuf", Type: pluginkit.TypeInt, Min: "1", Max: "1073741824", Default: "4194304", Help: "socket send buffer in bytes (best effort: capped by net.core.wmem_max unless root)"},
	{Name: "rcvbuf", Type: pluginkit.TypeInt, Min: "1", Max: "1073741824", Default: "4194304", Help: "socket receive buffer in bytes (best effort: capped by net.core.rmem_max unless root)"},
	{Name: "batch", Type: pluginkit.TypeInt, Min: "1", Max: "64", Default: "64", Help: "messages per system call"},
	{Name: "gso", Type: pluginkit.TypeString, Values: onOff, Default: "on", Help: "send runs of frames to one peer as one UDP_SEGMENT message where the kernel offers it"},
	{Name: "gro", Type: pluginkit.TypeString, Values: onOff, Default: "on", Help: "receive coalesced messages with UDP_GRO where the kernel offers it"},
}}

var onOff = []string{"on", "off", "true", "false", "1", "0"}
