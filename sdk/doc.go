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
// module requiring only this one (see Versions for the require line): transport-xor (a UDP transport that
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
//
// # Versions
//
// The SDK is a Go module of its own, github.com/tarzan-net/tarzan/sdk
// (this directory's go.mod), separate from the node's module. It requires
// only what a plugin needs: go-plugin and hclog, gRPC and protobuf,
// golang.org/x/sys and x/net, and goleak for the conformance suites' leak
// check. None of the node's dependencies (gonum, gVisor, wireguard-go,
// prometheus) reach a plugin. A plugin's go.mod says:
//
//	require github.com/tarzan-net/tarzan/sdk v0.1.0
//
// or `go get github.com/tarzan-net/tarzan/sdk@latest`. Releases are tags
// sdk/vX.Y.Z on the Tarzan repository (the go command's scheme for a
// module in a subdirectory), independent of the node's own vX.Y.Z tags.
// What a bump promises:
//
//   - Patch (v0.1.0 to v0.1.1): fixes only. No exported identifier
//     changes, the plugin protocol stays, and a conformance suite starts
//     failing a plugin only for what the written contract already forbade.
//   - Minor (v0.1 to v0.2), while the major version is 0: may change the
//     Go API (the release notes say what to edit) and may add a plugin
//     protocol version (pluginkit.ProtocolVersion).
//   - Major (from v1 on): Go's rule, a new module path (/v2) for any
//     incompatible Go API change; minors only add.
//
// Two other version numbers exist and neither is the SDK's:
//
//   - The plugin protocol, pluginkit.ProtocolVersion (the gRPC services
//     and the data-channel formats), decides whether a built plugin runs
//     under a node: go-plugin's handshake picks the highest version both
//     offer, whichever SDK release built the binary. When it is bumped, the
//     node and the SDK keep offering the previous version for at least one
//     release, so plugins built before keep running. `tarzan version` and
//     `tarzan plugin verify` print it.
//   - The wire protocol between nodes (core/link's prologue, "v4" in
//     `tarzan version`) is invisible to plugins: a transport carries sealed
//     frames of one size and never reads them. A wire-protocol bump needs
//     no new SDK and no rebuilt plugin, and no SDK release changes it.
//
// The node's go.mod requires the SDK release it was tested with and
// replaces it with ./sdk, so the node always builds against the checkout;
// a node release that changed sdk/ tags sdk/vX.Y.Z first and names it in
// that require line. Packages sdk/ippkt (IP packet parsing and patching)
// and sdk/exitpolicy (exit policy rules) are part of the SDK because IP
// adapters use their types (adapter.Config.ExitPolicy, the ippkt.Info
// that adapter.ClampMSS takes), and follow the same rules. scripts/sdk-outside.sh (run by CI) builds and tests the
// examples as an outside author would: an empty module, `go get` of the
// SDK served from the checkout by a local module proxy, and no node-only
// module in the resulting go.mod or go.sum.
package sdk
