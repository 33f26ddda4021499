// Package onion implements Tarzan's tunnel cryptography: the per-hop
// ntor-like handshake (ntor v3: it also yields a resume key, with which
// the initiator moves a circuit's last hop onto a new path, rejoin.go),
// the fixed-size onion cells (a Sphinx-style shift so that every hop can
// verify a MAC over the whole cell while cells keep one size), and the
// relay payload header.
//
// Nothing a hop reads tells it its position: each hop has its own cell
// counters, sent offset by a secret per-hop base, so the values read at
// different hops are unrelated and uniform. Keys are ratcheted every
// ratchetEvery counters, so seizing a hop's memory does not open the cells
// it handled more than two generations before.
//
// The wire format is specified in docs/PROTOCOL.md §6–§8; vectors live in
// testdata/onion/. The package does no I/O and keeps no timers: the relay
// and tunnel engines own circuits, links and lifetimes.
package onion

import "errors"

// Sizes fixed by docs/PROTOCOL.md §1.
const (
	CellSize    = 1368                        // slot + body
	SlotSize    = 16                          // counter(4) || tag(12)
	BodySize    = CellSize - SlotSize         // 1352
	MaxHops     = 4                           // bound on path length; fixes the shift area
	PayloadSize = BodySize - SlotSize*MaxHops // 1288: what one hop can deliver
	// ClientMsgLen is the size of the client handshake message:
	// nodeID(32) || onion key B(32) || ephemeral X(32).
	ClientMsgLen = 96
	// ServerMsgLen is the size of the server reply: Y(32) || auth(32).
	ServerMsgLen = 64

	tagSize = 12
	ctrSize = 4 // the wire counter

	// ratchetEvery is how many counters one key generation covers; a hop
	// keeps the generation its replay window needs and the one before.
	ratchetEvery = 4096
	// maxAhead bounds how many generations past its current one a receiver
	// derives for a cell: losing up to ratchetEvery·maxAhead cells in a row
	// is survived, and a forged counter costs at most maxAhead derivations.
	maxAhead = 2
	// maxResync bounds how far the first cell from a hop after a rejoin
	// may jump (rejoin.go): cells lost while the path was broken are a
	// gap of up to ratchetEvery·maxResync counters (a million cells),
	// derived through once, only for a cell whose tag then verifies.
	maxResync = 256
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrTagMismatch: a cell failed its per-hop MAC (tampered, or not from
	// this circuit), or carries a counter this hop holds no keys for yet
	// (beyond maxAhead generations). Drop the cell.
	ErrTagMismatch = errors.New("onion: tag mismatch")
	// ErrReplay: the cell's counter was seen before or is older than the
	// replay window. Drop the cell.
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
	// ErrAside: the path's last hop is set aside while the hops before it
	// are replaced (Path.SetAside); nothing can be sent to it until it
	// rejoins.
	ErrAside = errors.New("onion: last hop set aside")
	// ErrExhausted: a hop used up its 2^32−1 counters in one direction;
	// the tunnel must be rebuilt (never reached in practice).
	ErrExhausted = errors.New("onion: counters exhausted")
)
