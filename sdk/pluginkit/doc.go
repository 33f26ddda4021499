// Package pluginkit is the go-plugin plumbing shared by every plugin kind.
// Plugin authors need only Logger (and, to pin a binary, nothing at all:
// the node does that); the kind packages (transportplugin, ...) build on
// the rest.
//
// Handshake and versions. Host and plugin share Handshake (magic cookie
// TARZAN_PLUGIN) and negotiate a protocol version with go-plugin's
// VersionedPlugins; ProtocolVersion is the current one. A plugin and a host
// with no version in common fail at Launch with an error wrapping
// ErrVersionMismatch that names what each side speaks.
//
// Launching. A Launcher names the executable and its arguments (a node
// re-executing itself passes os.Executable() and ["plugin", "serve",
// "transport", "udp"]), an optional hex SHA-256 the executable must match
// before every start (ErrChecksum otherwise), the *slog.Logger that
// receives the child's log lines, and a Name for logs and Stats.
//
// Supervision. A Supervisor starts the child and polls it; when it dies
// the supervisor restarts it after 100 ms, doubling up to 5 s for children
// that keep dying, and back to 100 ms once one has run for a minute. After
// each restart the kind package replays what the host had set (options,
// listen address, Start(self), Open(cfg)). Every host-side value Launch
// returns implements Reporter (Restarts and PluginStats). Close kills the
// child and waits for it; CleanupAll closes every supervisor and belongs in
// the node's exit path. A child whose host vanishes (even SIGKILLed) exits
// by itself within a second.
//
// Options. A plugin declares the keys of its options table in a Schema
// (each key's type, default, bounds and help) with Declare before it
// serves, and checks its options with Schema.Check. Serve answers a
// describe request (DescribeEnv=1) by printing a Description as JSON and
// exiting, which is how `tarzan validate` learns an external plugin's
// kind, name and options offline, after checking its pin (options.go).
//
// Logs. go-plugin's own events and everything a child logs with Logger
// reach the host's slog logger, tagged plugin=<Name>; the host's level is
// passed to the child so it does not format lines that would be dropped.
package pluginkit
