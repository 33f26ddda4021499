// Package sdk is what a Tarzan plugin author imports. It holds no code of
// its own; this comment is the map.
//
// A Tarzan node has four kinds of plugin. Each kind is a small Go
// interface in its own package, which the node's core uses and knows
// nothing else about:
//
//	sdk/transport   moves link frames between nodes (udp, dtls, kcp, ...)
//	sdk/discovery   proposes peers; the core verifies and decides
//	sdk/cover       sets the cover-traffic schedule once per tick
//	sdk/adapter     where IP packets enter and leave tunnels (TUN, SOCKS, exit NAT)
//
// A plugin normally runs as a child process of the node, through
// hashicorp/go-plugin (gRPC over a local socket, automatic mutual TLS, a
// versioned handshake). Each kind has a <kind>plugin package with two
// functions:
//
//	Serve(factory)                 plugin side: call it from your main; it blocks
//	Launch(launcher, options)      node side: starts the child, returns the interface
//
// So a complete third-party transport is:
//
//	package main
//
//	import "github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
//
//	func main() { transportplugin.Serve(mytransport.New) } // New is a transport.Factory
//
// and the node runs it with transportplugin.Launch(pluginkit.Launcher{Path:
// "/usr/lib/tarzan/mytransport", Checksum: "<sha256>", Name: "mytransport"},
// options). The same factory can also run in process (no IPC at all):
// the core only ever sees the interface.
//
// Control calls (configure, listen, tick, ...) go over gRPC. Packets never
// do: transports and adapters move them in batches over a Unix
// SOCK_SEQPACKET socket pair the node hands the child as file descriptor
// 3 (formats in transportplugin and adapterplugin). If a child dies, the
// node restarts it with back-off and replays what it had set up, such as
// the listen address; see sdk/pluginkit.
//
// Every kind also has a <kind>test package with an in-memory fake, and
// transporttest has a conformance suite a transport must pass: run it
// against your transport in one line (see transporttest).
//
// Logging: in a plugin use pluginkit.Logger() (a log/slog logger); its
// lines appear in the node's log tagged with the plugin's name. Never
// write to stdout: go-plugin uses it for its handshake.
package sdk
