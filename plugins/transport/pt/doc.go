// Package pt is a Tarzan transport that carries link frames over any Tor
// pluggable transport speaking the managed-proxy protocol of pt-spec v1
// (obfs4proxy/lyrebird, webtunnel, …): the node's frames look like the
// PT's traffic on the wire, and a censor that blocks UDP or fingerprints
// fixed-size datagrams sees an obfs4 (or other PT) stream instead.
//
// # Processes
//
// Listen starts two PT children, as Tor does: a server
// (TOR_PT_SERVER_TRANSPORTS, TOR_PT_SERVER_BINDADDR = the address the node
// listens on, TOR_PT_ORPORT = a private loopback port of ours) and a client
// (TOR_PT_CLIENT_TRANSPORTS; it opens a SOCKS5 port). Both get
// TOR_PT_STATE_LOCATION = state_dir (0700; obfs4 keeps its keys, hence its
// cert, there) and TOR_PT_EXIT_ON_STDIN_CLOSE=1, so they die with the
// plugin even if it is killed. Their stdout configuration lines (VERSION,
// CMETHOD/SMETHOD, *-ERROR, *METHODS DONE) are parsed; later lines and
// stderr go to the debug log. A child that dies is restarted with
// back-off (the server on the same port, with the same state, so the
// address and cert the peers know stay valid); pt_restarts counts it.
//
// # Streams
//
// A PT carries streams, so each peer gets one stream we dial (through the
// client's SOCKS5 port, the peer's PT arguments as username/password as
// pt-spec asks), opened by a hello (the magic "TZPT\x01", a length byte,
// our listening address as text) and followed by frames, each a 2-byte
// big-endian length then the frame. The hello is how the receiver reports
// the peer's listening address as the source, as the transport contract
// requires. Writes go on the stream we dialled, whose PT authenticates
// the server (obfs4: the cert); only while we have none (the peer cannot
// be dialled) do they go back on the peer's own inbound stream. A forged
// hello can therefore only inject frames under another address, which the
// core's link layer authenticates and drops; it cannot capture our writes
// to that peer. A stream that dies is dialled again on the next frame,
// with back-off from 100 ms to 5 s, so a peer that restarts is reached
// again. WriteBatch never blocks: each peer has a queue of 512 frames and
// a full queue drops and counts (queue_drops).
//
// # Options ([transport.options] in node.toml)
//
//	binary          the PT executable (default obfs4proxy, from PATH)
//	method          the PT method (default obfs4)
//	state_dir       TOR_PT_STATE_LOCATION; empty: a temporary directory
//	                (a new cert at every start)
//	server_options  k=v;k=v for the server (obfs4: iat-mode=1)
//	advertise       the address our hello names (default the bound one; the
//	                node's advertised address, given by SetAdvertised, wins)
//	peers           "ADDR ARGS; ADDR ARGS": the peers' PT arguments
//	peers_file      a file of "ADDR ARGS" lines, read again whenever a peer
//	                without arguments is dialled
//
// # Bridge lines
//
// On Listen the transport writes its bridge line, "ADDR ARGS" (obfs4:
// cert=…,iat-mode=0), to state_dir/bridge, and Params returns ARGS, which
// the node publishes in its descriptor; SetPeerParams takes the peers'
// from theirs, in process or out (sdk/transport/transportplugin). Only the
// first contact needs a line out of band (peers, peers_file), as a Tor
// bridge does. Arguments from descriptors are candidates, since anyone can
// sign a descriptor naming another node's address (params.go): a forged
// cert costs one failed dial and never displaces one that has worked.
package pt
