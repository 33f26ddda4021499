package main

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the options New reads; main declares it, so that
// `tarzan validate` checks node.toml's [cover.options] against it.
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{
	{Name: "rate", Type: pluginkit.TypeFloat, Min: "0.000001", Default: "50", Help: "frames per second per link between bursts, > 0"},
	{Name: "burst_rate", Type: pluginkit.TypeFloat, Min: "0.000001", Default: "200", Help: "frames per second per link during a burst, at least rate"},
	{Name: "burst_every", Type: pluginkit.TypeDuration, Min: "1ns", Default: "10s", Help: "time from one burst's start to the next"},
	{Name: "burst_for", Type: pluginkit.TypeDuration, Min: "1ns", Default: "1s", Help: "how long a burst lasts, shorter than burst_every"},
	{Name: "interval", Type: pluginkit.TypeDuration, Min: "1ns", Default: "100ms", Help: "how often the cover engine consults the policy"},
}}
