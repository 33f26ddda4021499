package constant

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [cover.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "rate", Type: pluginkit.TypeFloat, Min: "0.000001", Default: "50", Help: "frames per second per link, > 0 (use policy none for no cover)"},
	{Name: "interval", Type: pluginkit.TypeDuration, Min: "1ns", Default: "100ms", Help: "how often the cover engine consults the policy"},
}}
