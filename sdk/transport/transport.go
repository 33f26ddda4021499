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
