// Package pnat is Tarzan's pseudonymous NAT: the exit adapter that sends
// tunnel traffic to the Internet under the exit's own address.
//
// # Design
//
// Tunnels deliver whole IP packets (WritePackets, tagged with the tunnel's
// Flow). pnat terminates every TCP connection and UDP 5-tuple in one
// userspace gVisor network stack and opens an ordinary socket (net.Dial)
// for each; bytes are copied between the two. Replies leave the stack as IP
// packets and return to the tunnel they belong to (ReadPackets, same Flow).
//
// Why a userspace stack and ordinary sockets: the exit then needs no root,
// no TUN device, no iptables and no raw sockets. The kernel sees a normal
// program making normal connections, so its routing, source-address
// choice, firewall and port allocation all apply, and nothing a client
// sends ever reaches the host's network as a raw packet: the client can
// forge IP headers, but only the stream or datagram contents cross over.
//
// Why per-flow address mapping: every client numbers itself from the same
// private range (typically 100.64.0.2), so two tunnels routinely send
// packets with identical source addresses and ports. Before a packet enters
// the shared stack, pnat rewrites its source to an internal address that is
// unique to (tunnel, inner source) — drawn from 100.64.0.0/10 for IPv4 and
// fd7a:7a72:7a6e:ffff::/64 for IPv6 — and rewrites the destination of the
// stack's replies back (checksums patched incrementally, sdk/ippkt). The
// stack's demultiplexer therefore never mixes tunnels, and the internal
// address alone tells which tunnel a reply goes to. Internal addresses
// never leave the exit. A freed address is reused only after the pool's
// fresh addresses run out, oldest first, so stale TCP state in the stack
// cannot meet a new tunnel.
//
// The stack's NIC is promiscuous and spoofing: it accepts packets to any
// destination and answers from that destination, which is what lets a
// gVisor forwarder (tcp.NewForwarder, udp.NewForwarder) stand in for every
// server on the Internet.
//
// # Safety
//
// The exit policy (the node's, adapter.Config.ExitPolicy at Open; default
// exitpolicy.Default(); the deprecated option "policy" still overrides
// it for one version) is checked on every packet before it enters the stack and again right before
// each dial. A rejected TCP segment is answered at once with a RST and a
// rejected UDP datagram or echo with ICMP "administratively prohibited", so
// clients fail fast instead of timing out; no mapping is made and nothing
// is dialed. The policy judges an IPv6 destination that carries an IPv4
// address (NAT64, 6to4, Teredo, ISATAP, IPv4-compatible) by that IPv4
// address too (exitpolicy.Policy.Check). Independently of the policy, pnat
// refuses destinations on the exit host itself — loopback, unspecified,
// and the host's own addresses, also when carried inside IPv6 — unless
// allow_loopback=true (for tests): a client must never reach services
// bound to the exit's localhost. Packets are checked against a cached list
// of the host's addresses; every dial and new echo flow first asks the
// kernel's routing table whether the destination is local (local.go), so
// an address the host has just gained is refused at once, not after a
// rescan.
//
// Flow limits: each tunnel may hold max_flows_per_tunnel open flows (TCP
// connections, UDP 5-tuples, ICMP echo identifiers, DNS sessions). An
// excess SYN gets a RST, an excess datagram or echo an ICMP error; each is
// counted. UDP, ICMP and DNS flows close after idle_timeout without
// traffic; TCP flows close when both sides have closed, or after
// tcp_idle_timeout without data. A mapping lives while it has flows, then
// idle_timeout longer. CloseFlow drops a tunnel's flows and mappings at once.
//
// ICMP: only echo requests are served, by sending a real echo from the
// exit through an unprivileged ICMP socket ("udp4"/"udp6" ping sockets;
// Linux allows them to the groups in net.ipv4.ping_group_range). If the OS
// refuses those sockets, echoes are counted (icmp_unavailable) and dropped:
// pnat never asks for raw sockets. Other ICMP from clients is dropped.
//
// DNS: UDP and TCP port 53 to the resolver addresses (the node's,
// adapter.Config.DNS at Open; default adapter.DefaultDNS, 100.64.0.53 and
// fd7a:7a72:7a6e::53; the deprecated option dns_addr still overrides them
// for one version) is answered by the exit
// itself from its own resolver (net.DefaultResolver, replaceable with
// SetResolver), so names are resolved at the exit, not by the client's
// network. A and AAAA are answered; NXDOMAIN and SERVFAIL pass through;
// other query types get NOTIMP.
//
// Goroutines: Open starts the janitor (idle expiry); ReadPackets reads the
// stack's output on its caller's goroutine; every flow runs one or two copy goroutines,
// and the TCP forwarder runs each connection attempt in its own goroutine.
// All are tracked by one WaitGroup and stop on Close.
package pnat
