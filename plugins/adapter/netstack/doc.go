// Package netstack is Tarzan's in-process client adapter: a Go program
// dials through it, and it turns the program's streams and datagrams into
// IP packets with a userspace TCP/IP stack (gVisor, built by package
// stackgroup). It needs no root, no TUN device and no SOCKS port; it is
// what package tarzan (the embedding API) plugs into the node.
//
// It is plugins/adapter/socks without the SOCKS protocol: the same
// stacks, the same Flow numbers, the same rule that names are resolved at
// the exit, but the application calls DialContext instead of speaking
// SOCKS5 to a port. It is not a shipped plugin (plugins/builtin does not
// list it): its API is Go calls in the node's own process, which a plugin
// in a child process could not offer.
//
// Names. DialContext never resolves a name on this machine: a host name is
// looked up with a DNS query to the in-tunnel resolver address (option
// dns), which travels through the tunnel like any other packet and is
// answered by the exit's resolver. So the local network sees no DNS query,
// and the answer fits the exit the connection leaves from. Answers are
// kept in the group's own cache for their TTL, at most 60 s.
//
// Isolation. Every isolation group has its own stack and its own Flow
// number (adapter.Packet.Flow); the core never sends two groups through
// one tunnel, so two groups share neither a tunnel nor an exit circuit.
// The default group (Flow 0) serves Adapter.DialContext; Adapter.Group
// opens or joins a named group, which lives until its last holder closes
// it. Flow numbers are never reused, so a group opened again gets a new
// tunnel.
//
// Destinations that mean nothing through a tunnel (loopback, unspecified,
// multicast, link-local, broadcast) are refused at once with
// ErrNotAllowed, also when a name resolves to one: the core would drop
// their packets, and a dial would only time out.
//
// Options (map keys, as in a node.toml [adapter.options] table):
//
//	address  the stacks' inner addresses, comma-separated (default
//	         100.64.0.2,fd7a:7a72:7a6e::2; Config.Addresses if unset)
//	dns      resolvers inside the tunnel, tried in order (default the
//	         in-tunnel DNS addresses 100.64.0.53,fd7a:7a72:7a6e::53)
//	mtu      inner MTU (default Config.MTU, else 1280)
//
// Packet pipeline, application → tunnel:
//
//  1. DialContext (the application's goroutine) resolves and connects
//     through its group's stack (stackgroup.Stack);
//  2. the stack queues each IP packet on its link endpoint and leaves a
//     wake-up token for the adapter's stackgroup.Reader;
//  3. ReadPackets (the core's goroutine) copies the queued packets of
//     every group straight into the core's buffers, tagged with each
//     group's Flow.
//
// Tunnel → application: WritePackets (the core's goroutine) looks the Flow
// up and injects the packet into that group's stack synchronously (the
// stack copies it), so the core's buffer is free again on return; the
// stack's own goroutines wake the application's Read.
package netstack
