// Package onion implements Tarzan's tunnel cryptography: the per-hop
// ntor-like handshake, the fixed-size onion cells (a Sphinx-style shift so
// that every hop can verify a MAC over the whole cell while cells keep one
// size and hops cannot learn their position), and the relay payload header.
//
// The wire format is specified in docs/PROTOCOL.md §6–§8; vectors live in
// testdata/onion/. The package does no I/O and keeps no timers: the relay
// and tunnel engines own circuits, links and lifetimes.
package onion

import "errors"

// Sizes fixed by docs/PROTOCOL.md §1.
const (
	CellSize    = 1368                        // slot + body
	SlotSize    = 16                          // seq(4) || tag(12)
	BodySize    = CellSize - SlotSize         // 1352
	MaxHops     = 4                           // bound on path length; fixes the shift area
	PayloadSize = BodySize - SlotSize*MaxHops // 1288: what one hop can deliver
	// ClientMsgLen is the size of the client handshake message:
	// nodeID(32) || onion key B(32) || ephemeral X(32).
	ClientMsgLen = 96
	// ServerMsgLen is the size of the server reply: Y(32) || auth(32).
	ServerMsgLen = 64

	tagSize = 12
	seqSize = 4
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrTagMismatch: a cell failed its per-hop MAC (tampered, or not from
	// this circuit). Drop the cell.
	ErrTagMismatch = errors.New("onion: tag mismatch")
	// ErrReplay: the cell's sequence number was seen before or is older
	// than the replay window. Drop the cell.
	ErrReplay = errors.New("onion: replayed cell")
	// ErrNotForUs is for callers: Relay.Forward reports a verified forward
	// cell that is not addressed to this hop as !local; a relay that has no
	// next hop for the circuit drops it with this error.
	ErrNotForUs = errors.New("onion: forward cell not for this hop and no next hop")
	// ErrHandshake: the handshake failed (unknown node ID or onion key,
	// degenerate DH output, wrong server auth).
	ErrHandshake = errors.New("onion: handshake failed")
	// ErrMalformed: a buffer has the wrong size or a field is out of bounds.
	ErrMalformed = errors.New("onion: malformed input")
	// ErrTooManyHops: a path cannot grow beyond MaxHops.
	ErrTooManyHops = errors.New("onion: too many hops")
	// ErrNoSuchHop: Seal was asked to address a hop the path does not have.
	ErrNoSuchHop = errors.New("onion: no such hop")
	// ErrExhausted: a circuit used up its 2^32−1 sequence numbers in one
	// direction; the tunnel must be rebuilt (never reached in practice).
	ErrExhausted = errors.New("onion: sequence numbers exhausted")
)
