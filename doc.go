// Package tarzan runs a Tarzan node inside a Go program and dials through
// it: anonymous TCP and UDP connections, and an http.Client, with no
// SOCKS port, no TUN device and no root. It is to Tarzan what tsnet is to
// Tailscale and arti-client to Tor.
//
// Tarzan is a peer-to-peer anonymizing network: every node relays for the
// others, and a connection leaves the network at an exit node after
// crossing a tunnel of several relays (three by default), each of which
// knows only its neighbours on the path.
//
// # Quick start
//
//	node, err := tarzan.Start(ctx, tarzan.Options{
//		Dir:       "/var/lib/myapp/tarzan", // identity key and state
//		Listen:    netip.MustParseAddrPort("0.0.0.0:7700"),
//		Advertise: []netip.AddrPort{myPublicAddr}, // where others reach it
//		Peers:     []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:7700")},
//	})
//	if err != nil { ... }
//	defer node.Close()
//
//	resp, err := node.HTTPClient().Get("https://example.com/")
//
//	conn, err := node.Dial(ctx, "tcp", "example.com:443") // a net.Conn
//
// Start returns as soon as the node runs; it then joins the network in
// the background. A dial waits until the node can build a tunnel (see
// Node.Ready), so a program can dial at once. StartConfig starts a node
// from a node.toml file instead (see `tarzan init`); Options.Configure
// reaches every node.toml setting from code.
//
// Everything runs in the calling process: the transport, discovery, cover
// and exit plugins are the builtin ones, called in process (an external
// plugin named by path in a node.toml still runs as its own executable),
// and the program's connections enter the node through a userspace TCP/IP
// stack (plugins/adapter/netstack). The identity key is created in
// Options.Dir on first start, with mode 0600; keep it, or the network sees
// a new node.
//
// # Joining the network
//
// Tarzan has no directory servers. Options.Peers are the addresses of a
// few nodes already in the network; the node learns the others from them
// by gossip and admits each after checking its signed descriptor. Other
// nodes must be able to reach this node at its advertised address (the
// bound Listen address, or Options.Advertise). Options.Exit makes the node
// an exit as well, under Options.ExitPolicy.
//
// # Dialing and names
//
// Node.Dial and Node.DialContext take the networks "tcp", "tcp4", "tcp6",
// "udp", "udp4" and "udp6" and a "host:port" address. A host name is
// never resolved on this machine: it is sent as a DNS query through the
// tunnel to the in-tunnel resolver address, and the exit answers it with
// its own resolver. The local network sees no DNS query, and the answer
// fits the place the connection leaves from. Node.HTTPClient and
// Node.Transport hand host names to Dial unresolved and ignore the
// HTTP_PROXY family of environment variables.
//
// Each connection is carried by a tunnel whose exit's published policy
// accepts its destination; the node keeps a spare tunnel built ahead of
// need, so a new connection usually starts at once.
//
// # Isolation
//
// Node.Isolated(token) returns a Client with its own Dial and HTTPClient.
// Connections of different tokens never share a tunnel, so no relay or
// exit can link them by the circuit they travel on; connections of the
// same token may share one (like Tor's isolation tokens, or SOCKS
// username isolation). Use one token per identity the program presents to
// the world: per account, per user, per task. Node.NewIsolated returns a
// client isolated from every other (arti's isolated_client); one per
// connection isolates every connection. Node.Dial uses the default
// group, which is Isolated(""). Close a Client when done with it: its
// tunnels go when no Client of its token remains.
//
// # What is anonymous and what is not
//
// Through a Node:
//   - the destination sees the exit's address, not this host's;
//   - no single relay learns both this host and the destination: the
//     first hop sees this host but not where the traffic goes, the exit
//     sees the destination but not who sent it;
//   - names are resolved at the exit (see above).
//
// Not covered:
//   - the exit sees the traffic itself: use TLS (https) end to end, or it
//     can read and change what you send;
//   - anything the program sends identifies it as well as an address
//     does: cookies, logins, a TLS client certificate, a distinctive
//     User-Agent. Use a separate Isolated client per identity and do not
//     mix them;
//   - connections the program makes without the Node (net.Dial,
//     http.DefaultClient, a library with its own dialer) and names it
//     resolves itself (net.LookupHost) go directly, in the clear;
//   - this host's neighbours in the network (its mimics) see that it runs
//     Tarzan and how much it sends. Cover traffic (the [cover] section,
//     off by default) hides when it sends; an observer of the whole
//     network who times traffic at both ends is not fully defeated;
//   - there is no Listen: a Node makes outgoing connections only.
//
// # Errors
//
// A dial's error says what failed and, when it helps, what the node knew
// (how many peers, mimic links and tunnels it had):
//   - the context ended while the node could not build a tunnel yet: the
//     error wraps ctx.Err() and says what was missing, for example "the
//     node knows 0 other nodes and a 3-hop tunnel needs 3";
//   - ErrNotAllowed: a loopback, unspecified, multicast, link-local or
//     broadcast destination, also when the exit resolved a name to one;
//   - a *net.DNSError: the exit's resolver does not know the name;
//   - ErrUnreachable: no exit accepts the destination, or it is
//     unreachable from the exit; "connection refused": the destination
//     refused it;
//   - ErrClosed: the node was closed or has stopped; ErrClientClosed: the
//     Client was closed.
//
// Start and StartConfig report bad options and configurations before
// anything starts, naming the option or the node.toml key.
//
// # Shutdown
//
// Node.Close stops the node: its connections end, every plugin stops and
// its goroutines are gone when Close returns. The node also stops when the
// context given to Start ends; Node.Done is closed once it has stopped.
package tarzan
