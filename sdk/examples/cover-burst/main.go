// Command tarzan-burst-cover is an example third-party Tarzan cover
// policy, built as its own binary and run by a node as a child process.
//
// Every mimic link sends a constant rate of frames (data takes the place
// of padding) and, periodically, a burst at a higher rate: an observer
// sees the same square wave on every link whatever the load. It is a
// teaching example for the plugin SDK, not a tuned defence.
//
// Options ([cover.options] in node.toml):
//
//	rate         frames per second per link outside bursts (default 50, > 0)
//	burst_rate   frames per second per link during a burst (default 200, >= rate)
//	burst_every  time from the start of one burst to the next (default 10s)
//	burst_for    length of a burst (default 1s, < burst_every)
//	interval     how often the node consults the policy (default 100ms)
package main

import (
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

func main() {
	pluginkit.Declare(OptionSchema) // `tarzan validate` learns the options from it
	coverplugin.Serve(New)
}
