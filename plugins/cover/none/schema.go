package none

import "github.com/tarzan-net/tarzan/sdk/pluginkit"

// OptionSchema declares the [cover.options] keys this plugin reads (`tarzan
// validate` checks node.toml against it; builtin's tests check that New
// accepts and refuses what it says).
var OptionSchema = pluginkit.Schema{Name: Name, Options: []pluginkit.Option{}}
