package balanced

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [cover.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "interval", Type: pluginkit.TypeDuration, Min: "1ns", Default: "100ms", Help: "how often the cover engine consults the policy"},
	{Name: "window", Type: pluginkit.TypeDuration, Min: "1ns", Default: "300ms", Help: "how long received rates are smoothed over"},
	{Name: "min_rate", Type: pluginkit.TypeFloat, Min: "0.000001", Default: "20", Help: "frames per second every link sends at least, > 0"},
	{Name: "max_rate", Type: pluginkit.TypeFloat, Min: "0", Default: "5000", Help: "frames per second a link sends at most"},
	{Name: "leak", Type: pluginkit.TypeFloat, Min: "0", Max: "0.999999", Default: "0.1", Help: "share of the imbalance left unbalanced, in [0, 1)"},
	{Name: "spread", Type: pluginkit.TypeString, Values: []string{SpreadReciprocal, SpreadEven}, Default: SpreadReciprocal, Help: "how a link's cover is spread over the others"},
}}
