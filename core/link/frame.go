// Package link implements the link layer between two mimics (PROTOCOL.md
// §3–§5): fixed-size frames, Noise IK handshakes, AEAD sessions with a
// replay window, and the reachability probe/proof exchange.
package link

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes fixed by PROTOCOL.md §1 and §3.
const (
	FrameSize   = 1408 // every datagram on a link
	HeaderSize  = 16   // type(1) reserved(3) receiver_index(4) counter(8)
	BodySize    = FrameSize - HeaderSize
	TagSize     = 16 // AES-256-GCM
	PayloadSize = BodySize - TagSize
)

// Frame types.
const (
	TypeHandshakeInit = 1
	TypeHandshakeResp = 2
	TypeData          = 3
	TypeProbe         = 4
	TypeProof         = 5
	TypeGossip        = 6
)

var (
	// ErrMalformed: wrong size, unknown type, bad layout. Nothing was
	// authenticated; the frame can be dropped silently.
	ErrMalformed = errors.New("link: malformed frame")
	// ErrReplay: a data counter already seen or behind the window, or a
	// handshake initiation whose timestamp is not newer than the last one.
	ErrReplay = errors.New("link: replayed")
	// ErrAuth: AEAD or Noise authentication failed, or the peer is not
	// who it must be.
	ErrAuth = errors.New("link: authentication failed")
	// ErrExpired: the session is past RejectAfterTime or
	// RejectAfterMessages; run a new handshake.
	ErrExpired = errors.New("link: session expired")
	// ErrStale: a handshake response after HandshakeTimeout, a handshake
	// used twice, or an initiation timestamp too far in the future.
	ErrStale = errors.New("link: stale handshake")
)

// Header parses the clear frame header for demultiplexing. It checks the
// length, the type and that the reserved bytes are zero; it authenticates
// nothing.
func Header(frame []byte) (typ byte, receiverIndex uint32, err error) {
	if len(frame) != FrameSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(frame), FrameSize)
	}
	typ = frame[0]
	if typ < TypeHandshakeInit || typ > TypeGossip {
		return 0, 0, fmt.Errorf("%w: unknown type %d", ErrMalformed, typ)
	}
	if frame[1]|frame[2]|frame[3] != 0 {
		return 0, 0, fmt.Errorf("%w: reserved bytes not zero", ErrMalformed)
	}
	return typ, binary.BigEndian.Uint32(frame[4:8]), nil
}

// putHeader writes a frame header into f[:HeaderSize].
func putHeader(f []byte, typ byte, receiverIndex uint32, counter uint64) {
	f[0], f[1], f[2], f[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint32(f[4:8], receiverIndex)
	binary.BigEndian.PutUint64(f[8:16], counter)
}

// newFrame returns a zeroed frame with a header of the given type and
// receiver index and counter 0 (all frames but data).
func newFrame(typ byte, receiverIndex uint32) []byte {
	f := make([]byte, FrameSize)
	putHeader(f, typ, receiverIndex, 0)
	return f
}

// checkControl checks a non-data frame's header (type, reserved bytes,
// zero counter) and that everything after the first used body bytes is
// zero padding, so such a frame has exactly one valid encoding.
func checkControl(frame []byte, typ byte, used int) error {
	t, _, err := Header(frame)
	if err != nil {
		return err
	}
	if used > BodySize {
		return fmt.Errorf("%w: type %d body needs %d bytes", ErrMalformed, typ, used)
	}
	if t != typ {
		return fmt.Errorf("%w: type %d, want %d", ErrMalformed, t, typ)
	}
	if binary.BigEndian.Uint64(frame[8:16]) != 0 {
		return fmt.Errorf("%w: non-zero counter in type %d frame", ErrMalformed, typ)
	}
	if !allZero(frame[HeaderSize+used:]) {
		return fmt.Errorf("%w: non-zero padding in type %d frame", ErrMalformed, typ)
	}
	return nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
