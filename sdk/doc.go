// Package sdk is what a Tarzan plugin author imports. It holds no code of
// its own; this comment is the map.
//
// A Tarzan node has four kinds of plugin. Each kind is a small Go
// interface in its own package, which the node's core uses and knows
// nothing else about:
//
//	sdk/transport   moves link frames between nodes (udp, dtls, kcp, ...)
//	sdk/discovery   proposes peers; the core verifies and decides
//	sdk/cover       sets the cover-traffic schedule once per tick (and may ask
//	                for loop cover, cover.Looper)
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
// transporttest and adaptertest have conformance suites a transport or an
// IP adapter must pass: run one against your plugin in one line (see
// transporttest.Run and adaptertest.Run). An IP adapter also takes the
// node's facts from sdk/adapter (InnerMTU, the resolver addresses, the MSS
// rule) and its settings from adapter.Config, never from copies of its own.
//
// Logging: in a plugin use pluginkit.Logger() (a log/slog logger); its
// lines appear in the node's log tagged with the plugin's name. Never
// write to stdout: go-plugin uses it for its handshake.
//
// # Walkthrough: writing a plugin
//
// Two complete external plugins live in sdk/examples, each its own Go
// module importing only sdk packages: transport-xor (a UDP transport that
// XORs payloads with a key, a toy and not security) and cover-burst (a
// constant cover rate with periodic bursts). Copy one to start. The steps,
// for a transport:
//
// 1. Implement the interface. Write a type with the methods of
// transport.Transport and a transport.Factory that builds it from its
// options. Declare the options in a pluginkit.Schema (name, type, default,
// help of each) and begin the factory with `if err :=
// OptionSchema.Check(options); err != nil { return nil, err }`: unknown
// keys and wrong types are then refused the same way by the plugin and by
// `tarzan validate`. Read the
// buffer-ownership rules in package transport: ReadBatch copies into the
// caller's buffers and keeps no reference; WriteBatch must be done with
// the caller's buffers when it returns; Close unblocks ReadBatch, which
// then returns transport.ErrClosed.
//
//	func New(options map[string]string) (transport.Transport, error) { ... }
//
// 2. Serve it. The program's main declares the options and serves; the
// same factory can be used in process by tests and by anything else that
// wants no IPC:
//
//	func main() {
//		pluginkit.Declare(OptionSchema)
//		transportplugin.Serve(New)
//	}
//
// Declared options are what `tarzan validate` checks node.toml against:
// it runs the pinned binary once with TARZAN_PLUGIN_DESCRIBE=1, and Serve
// then prints the plugin's kind, name and options as JSON and exits
// (pluginkit's options.go). The schema's Name must be what Name() returns.
//
// (coverplugin.Serve, discoveryplugin.Serve and adapterplugin.Serve for
// the other kinds.) Log with pluginkit.Logger(), never to stdout.
//
// 3. Test it with the conformance suite, in process and, by re-executing
// the test binary as the plugin, out of process exactly as a node runs it
// (see sdk/examples/transport-xor/xor_test.go for both):
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t *testing.T) transport.Transport {
//			tr, err := New(map[string]string{"key": "k"})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return tr
//		})
//	}
//
// The suite checks listening, single and full batches, both buffer
// ownership rules, oversize datagrams, Close unblocking a read,
// concurrent writers, and goroutine leaks.
//
// 4. Build and pin it. The node runs an external plugin only if the file
// matches the SHA-256 in node.toml, checked before every start, restarts
// included:
//
//	go build -o tarzan-xor-transport .
//	sha256sum tarzan-xor-transport
//
// 5. Configure it: name, path and sha256 in the plugin's section of every
// node.toml, options in its options table. Relative paths are relative to
// node.toml.
//
//	[transport]
//	name = "xor"
//	path = "/usr/local/lib/tarzan/tarzan-xor-transport"
//	sha256 = "<64 hex digits from sha256sum>"
//
//	[transport.options]
//	key = "the same on every node"
//
// 6. Debug it. `tarzan validate -c node.toml` checks the pin, the kind,
// the name and every option, naming file, line and key of each problem.
// `tarzan plugin verify PATH [-sha256 HEX]` starts the
// binary as a node would and reports the kind it serves and the protocol
// version it speaks, or why the handshake failed (-v shows the plugin's
// log). `tarzan plugin list -c node.toml` shows which plugins a config
// selects, whether each external file still matches its pin and, for a
// running node, each plugin's process ID and restart count. A node whose
// plugin fails its pin refuses to start with an error wrapping
// pluginkit.ErrChecksum that names the file, the pinned and the actual
// hash; `tarzan node` with log_level = "debug" shows go-plugin's events.
package sdk
