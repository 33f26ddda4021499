package gossip

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [discovery.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "bootstrap", Type: pluginkit.TypeAddrPort, List: true, Help: "peers to join through, IP:port literals; one is enough"},
	{Name: "interval", Type: pluginkit.TypeDuration, Min: "1ns", Default: "1s", Help: "round length; rounds that bring nothing new stretch the wait, up to 32 intervals"},
	{Name: "fanout", Type: pluginkit.TypeInt, Min: "1", Max: "64", Default: "3", Help: "peers sent a DIGEST per round"},
	{Name: "max_bytes", Type: pluginkit.TypeInt, Min: "1390", Default: "16384", Help: "message bytes sent per round, replies included (at least one message)"},
	{Name: "expiry", Type: pluginkit.TypeDuration, Min: "0s", Default: "0s", Help: "forget a descriptor this long after its Expires"},
}}
