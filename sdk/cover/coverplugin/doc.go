// Package coverplugin runs a cover.Policy in a child process.
//
// Plugin side: func main() { coverplugin.Serve(myFactory) }.
// Node side: p, err := coverplugin.Launch(launcher, options).
//
// One Tick is one gRPC call (service tarzan.cover.v1.Cover), never one per
// frame. Interval is read once at Configure, and so is the loop schedule
// of a policy that implements cover.Looper (the host's policy implements
// it always, answering rate 0 for a policy that asks for no loops). While the child restarts,
// Tick fails with an error wrapping pluginkit.ErrUnavailable and the
// engine should keep the previous schedule; the new child gets the same
// options and sees fresh statistics on the next tick.
//
// Sessions: a Pool (StartPool, Pool.New) runs many policies in one child,
// each a session with its own options, and Pool.TickMany ticks any number
// of them in one call (RPCs Open, TickSessions, CloseSession). The
// experiment simulator uses it to serve every simulated node from one
// process. Serve answers both forms; a plugin built before sessions
// answers Unimplemented to Open, and the Pool then starts one child per
// policy, as Launch does. A node runs one policy and keeps using Launch.
package coverplugin
