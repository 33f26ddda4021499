// Package transport defines how a Tarzan node moves fixed-size link frames
// between itself and other nodes. A transport knows nothing of tunnels,
// mimics or encryption: it carries opaque datagrams to and from
// netip.AddrPort addresses.
//
// The interface is batch-first, in the manner of wireguard-go's conn.Bind:
// the core reads and writes up to BatchSize datagrams per call so that a
// transport (in or out of process) can amortise system calls.
//
// Buffer ownership:
//   - ReadBatch: the caller owns every pkts[i].Buf for the whole call and
//     after it. The transport copies at most len(pkts[i].Buf) bytes into it,
//     sets pkts[i].N and pkts[i].Addr, and keeps no reference on return.
//   - WriteBatch: the caller owns pkts[i].Buf[:pkts[i].N]; the transport
//     must finish with it (copy or send) before WriteBatch returns.
//
// Concurrency: one goroutine calls ReadBatch while others call WriteBatch.
// Close may be called at any time and unblocks a pending ReadBatch, which
// then returns ErrClosed.
//
// # The contract
//
// What the core relies on, beyond the signatures below; the conformance
// suite (transporttest.Run) checks it.
//
//   - Source address. ReadBatch reports as a datagram's source the peer's
//     advertised address: the one in its descriptor, where this node
//     writes to reach it (for a plain socket, its listening address), never
//     an ephemeral port. A transport with one socket per node gets this for
//     free; a stream transport must carry it, e.g. in a hello that names
//     the advertised address (AdvertiseSetter). The hello needs no
//     authentication of its own: the core authenticates every frame, so a
//     lying hello can only misdirect replies that then fail.
//   - WriteBatch never waits for a peer. It returns in bounded time
//     whatever one peer does: a new peer whose dial or handshake takes
//     seconds, a peer that went away, a peer that never answers, a peer
//     that stops reading. Queue per peer and, when the queue is full,
//     drop and count (a Stats counter); never block the batch. The core's
//     writer calls WriteBatch for every peer in turn, so a stall on one
//     peer stalls all of them (the suite fails a call that takes 2 s).
//   - Errors. WriteBatch returns an error only when the transport itself
//     cannot send (ErrClosed, a dead socket, ErrUnavailable while an
//     out-of-process plugin restarts). The core then drops the whole
//     batch, so one peer's trouble (unreachable, gone, queue full, a
//     datagram it refuses) is dropped and counted, never returned.
//   - Peers that go away. A transport need not notice: the core notices
//     (keepalives, link timeouts) and re-sends (probes, handshakes). When a
//     peer restarts at the same address, traffic must flow again once both
//     sides write: a stream transport redials on the next write after its
//     connection failed (never gives up on a peer for good), and a session
//     transport accepts the peer's new handshake in place of the old
//     session.
//   - Many peers. Any number of peers at once, told apart by address and
//     port: many peers share one IP address (behind one NAT, or on one
//     host).
//   - Order. One writer's datagrams to one peer arrive in the order
//     written when the network does not reorder them. The core tolerates
//     reordering within its replay window, but TCP inside a tunnel reads
//     it as loss.
//   - Speed. Nothing paces or serialises on something slow; the suite's
//     floor (512 KiB/s between two transports on loopback) only catches a
//     transport that does.
//   - IPv6. Listen accepts IPv6 addresses, and datagrams go to and come
//     from IPv6 peers. IPv4 addresses are reported as IPv4 (not
//     IPv4-mapped IPv6).
//   - Wildcard listen. Listen(0.0.0.0:port) or Listen([::]:port) binds
//     every address and returns the wildcard with the real port. The
//     core then needs an advertised address (the advertise key in
//     node.toml; it refuses to start without one) and hands the first to
//     SetAdvertised (AdvertiseSetter); peers must see that address as the
//     source of what this node sends.
//   - Delivery is best effort, like UDP: a datagram may be lost. A
//     datagram larger than the reader's Buf is dropped, never truncated.
//
// The glue that runs a Transport in a child process lives in
// sdk/transport/transportplugin; an in-memory fake and the conformance
// suite live in sdk/transport/transporttest.
package transport

import (
	"errors"
	"net/netip"
)

// BatchSize is the most datagrams the core passes in one ReadBatch or
// WriteBatch call. Transports may handle fewer per call on read.
const BatchSize = 64

// MaxDatagram is the largest datagram the core ever writes: one link frame.
// Transports must carry datagrams of this size without fragmenting them
// on a 1500-byte path (their own overhead must fit in 1452-MaxDatagram).
const MaxDatagram = 1408

// ErrClosed is returned by ReadBatch and WriteBatch after Close.
var ErrClosed = errors.New("transport: closed")

// ErrUnavailable is returned while a transport is temporarily unable to
// carry traffic (for example an out-of-process transport whose plugin is
// being restarted). The caller should back off and retry.
var ErrUnavailable = errors.New("transport: temporarily unavailable")

// Packet is one datagram in a batch.
type Packet struct {
	Addr netip.AddrPort // remote address: source on read, destination on write
	Buf  []byte         // storage; see the package comment for ownership
	N    int            // bytes of Buf in use
}

// Transport carries datagrams for one node.
type Transport interface {
	// Name is the transport's registered name, e.g. "udp".
	Name() string
	// Listen binds the transport to addr (port 0 picks a free port) and
	// returns the address actually bound. It is called once, before any
	// ReadBatch or WriteBatch.
	Listen(addr netip.AddrPort) (netip.AddrPort, error)
	// ReadBatch blocks until at least one datagram has arrived, fills
	// pkts[:n] and returns n. A datagram larger than its Buf is dropped.
	ReadBatch(pkts []Packet) (n int, err error)
	// WriteBatch sends every packet in pkts. Delivery is best effort, like
	// UDP: an error means the batch could not be handed to the network.
	WriteBatch(pkts []Packet) error
	// Close releases the transport and unblocks ReadBatch.
	Close() error
}

// Factory creates an unbound transport from the plugin's options (the
// [transport.options] table in node.toml, as strings).
type Factory func(options map[string]string) (Transport, error)
