// Package discovery defines how a Tarzan node learns about other nodes.
//
// A discovery backend only proposes: it hands the core signed descriptors
// or bare addresses, and the core decides. The core admits a peer only after
// the descriptor's signature verifies and the peer proves it is reachable at
// its advertised address (a nonce sent there comes back signed by its
// identity key). A backend can therefore never make the core trust a forged
// or unreachable peer.
//
// The glue that runs a Discovery in a child process lives in
// sdk/discovery/discoveryplugin; an in-memory fake in discoverytest.
package discovery

import (
	"context"
	"errors"
	"net/netip"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("discovery: closed")

// ErrNoMessaging is returned by Outbox of a host-side plugin client whose
// backend does not implement Messenger; the core then stops asking.
var ErrNoMessaging = errors.New("discovery: backend does not exchange messages")

// Proposal is one candidate peer. At least one of Descriptor and Addr is
// set. With only Addr, the core contacts the address and learns the
// descriptor from the signed answer.
type Proposal struct {
	Descriptor []byte         // a signed descriptor, encoded as in docs/PROTOCOL.md
	Addr       netip.AddrPort // a transport address to contact
	Transport  string         // the transport Addr belongs to ("" = any)
}

// Discovery proposes peers to the core.
type Discovery interface {
	// Name is the backend's registered name, e.g. "static".
	Name() string
	// Start begins discovery. self is this node's current signed
	// descriptor; backends that gossip pass it on.
	Start(self []byte) error
	// Next blocks until there are new proposals or ctx ends. The returned
	// slice belongs to the caller.
	Next(ctx context.Context) ([]Proposal, error)
	// Admitted reports descriptors the core has admitted to its view, so a
	// gossiping backend can share them. The backend must not retain the
	// slices past the call; it may copy them.
	Admitted(descriptors [][]byte) error
	// Close stops discovery and unblocks Next.
	Close() error
}

// Factory creates a discovery backend from its options.
type Factory func(options map[string]string) (Discovery, error)

// MaxMessage is the largest discovery message the core carries: one
// fixed-size frame's body less its length field.
const MaxMessage = 1390

// Message is a discovery message to or from another node's backend.
type Message struct {
	Addr      netip.AddrPort // destination (Outbox) or source (Deliver)
	Transport string         // the transport to use or that carried it; "" = the node's first
	Data      []byte         // at most MaxMessage bytes
}

// Messenger is implemented by backends that talk to other nodes' backends
// (gossip). The core carries their messages in fixed-size frames of their
// own type (docs/PROTOCOL.md §3), unauthenticated: a backend must treat
// every message as untrusted and may only propose what it learns, as
// always. Messages are datagrams: best effort, possibly reordered.
type Messenger interface {
	// Outbox blocks until the backend has messages to send (or ctx ends)
	// and returns them; the slice and its Data belong to the caller.
	Outbox(ctx context.Context) ([]Message, error)
	// Deliver hands the backend messages that arrived. The backend must
	// not retain msgs or their Data after returning.
	Deliver(msgs []Message) error
}
