// Package dtls is a Tarzan transport that carries every link frame as one
// DTLS 1.2 record (github.com/pion/dtls/v3) over one UDP socket: a DTLS
// session per peer address, client role toward addresses we write to
// first, server role for ClientHellos that arrive.
//
// Datagram semantics are UDP's: best effort, unordered, never fragmented.
// Datagrams written while a session's handshake runs are queued (bounded)
// and sent when it is up; a failed handshake drops them (counted).
//
// # Identity
//
// Each side presents a self-signed Ed25519 certificate for the CertKey of
// its transport.Credentials, carrying the identity key and the
// Endorsement in an extension (see cert.go). A handshake succeeds only if
// the peer's endorsement verifies, under the identity set by SetPeer for
// its address if any. PeerIdentity reports the identity a peer proved.
// Without SetCredentials the transport makes a throwaway self-endorsed
// identity at Listen (enough for tests and the conformance suite).
//
// # Wire overhead
//
// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (X25519, extended master secret
// required): 13-byte record header + 8-byte explicit nonce + 16-byte tag
// = 37 bytes (Overhead). A 1408-byte frame leaves as 1445 bytes of UDP
// payload; MaxPayload = 1452 − 37 = 1415 is the largest datagram that fits
// a 1500-byte IPv6 path, and larger ones are refused. pion/dtls has no
// ChaCha20-Poly1305 suite; the AES-GCM one is the AEAD it offers.
//
// # Handshake flooding
//
// pion answers every ClientHello with a HelloVerifyRequest cookie
// (InsecureSkipVerifyHello is false, set explicitly), so a spoofed source
// gets a reply no larger than its ClientHello and costs no public-key
// work. pion keeps a little state per cookie exchange, so at most
// max_handshakes server-role handshakes run at once; further ClientHellos
// from new addresses are dropped (InputDrops) until some finish or time
// out. Established sessions are unaffected.
//
// # Simultaneous open and restarts
//
// If both sides send a ClientHello at once, the one whose ClientHello
// random is lower stays the client; the other abandons its attempt and
// answers as server, keeping its queue. (Comparing randoms rather than
// addresses works behind NATs, where the two sides see different address
// pairs.) A ClientHello at an established session (a peer that lost its
// state) starts a handshake alongside; it replaces the old session once
// it succeeds, so a spoofed ClientHello cannot tear a session down.
//
// # NAT rebinding
//
// Sessions do not negotiate DTLS Connection IDs (RFC 9146, which pion/dtls
// v3 offers): a connection ID is a stable identifier in every record, in
// the clear, that would let an observer follow a link across the peer's
// address changes. So records carry nothing that names the session. A peer whose address changed is recognised by its keys
// instead, as WireGuard roams: an application record from an unknown
// address is trial-decrypted under each established session's peer write
// key (at most 64 tries), and the session whose key opens it moves there
// if the record is newer than any seen from the peer, so a replayed record
// cannot move it. The old address stays an alias, so writes to either
// reach the peer. The wire stays plain DTLS 1.2, and it costs no bytes.
//
// # Options
//
//	queue                 datagrams held per peer while its handshake runs (default 1024)
//	max_handshakes        concurrent server-role handshakes (default 256)
//	handshake_timeout_ms  a handshake not done by then fails (default 10000)
//	sndbuf, rcvbuf        socket buffer sizes in bytes (default 4 MiB, best effort)
//
// # Measured
//
// BenchmarkDTLSFrames (loopback, 2-core dev VM, 1408-byte frames in
// batches of 64): 37–47k frames/s (0.4–0.5 Gb/s), about a tenth of the
// udp transport's 0.40–0.45M frames/s in the same run; pion allocates
// per record and each record is one system call.
package dtls
