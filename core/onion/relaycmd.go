package onion

import (
	"encoding/binary"
	"fmt"
)

// Command is the first byte of a relay payload (docs/PROTOCOL.md §8).
type Command uint8

// Relay commands.
const (
	CmdData         Command = 1 + iota // an inner IP packet
	CmdExtend                          // initiator → last hop: extend to the next node
	CmdExtended                        // that hop → initiator: the new hop's reply
	CmdExtendFailed                    // that hop → initiator: reason(1) || text
	CmdPing                            // initiator → any hop: id(8) || nonce(8), both random
	CmdPong                            // hop → initiator: the ping body echoed
	CmdTruncate                        // initiator → hop: drop everything after you
	CmdTruncated                       // hop → initiator: done
	CmdEnd                             // either way: tear the tunnel down
	CmdDrop                            // either way: padding, discarded unread
)

// Relay payload header: command(1) flags(1) length(2).
const (
	relayHeaderLen = 4
	MaxData        = PayloadSize - relayHeaderLen
)

var commandNames = [...]string{
	CmdData: "DATA", CmdExtend: "EXTEND", CmdExtended: "EXTENDED",
	CmdExtendFailed: "EXTEND_FAILED", CmdPing: "PING", CmdPong: "PONG",
	CmdTruncate: "TRUNCATE", CmdTruncated: "TRUNCATED", CmdEnd: "END", CmdDrop: "DROP",
}

// Known reports whether c is a command of this protocol version. Unknown
// commands decode without error so that callers can count and drop them.
func (c Command) Known() bool { return c >= CmdData && c <= CmdDrop }

func (c Command) String() string {
	if c.Known() {
		return commandNames[c]
	}
	return fmt.Sprintf("CMD(%d)", uint8(c))
}

// EncodeRelay writes the relay payload for cmd and data into dst (at least
// PayloadSize bytes) and returns dst[:PayloadSize]; the rest after data is
// zeroed. data may overlap dst. Flags are sent as zero.
func EncodeRelay(dst []byte, cmd Command, data []byte) ([]byte, error) {
	if len(dst) < PayloadSize {
		return nil, fmt.Errorf("%w: relay payload buffer of %d bytes", ErrMalformed, len(dst))
	}
	if len(data) > MaxData {
		return nil, fmt.Errorf("%w: relay data of %d bytes exceeds %d", ErrMalformed, len(data), MaxData)
	}
	dst = dst[:PayloadSize]
	n := copy(dst[relayHeaderLen:], data) // before the header: data may alias dst
	dst[0] = byte(cmd)
	dst[1] = 0
	binary.BigEndian.PutUint16(dst[2:4], uint16(n))
	clear(dst[relayHeaderLen+n:])
	return dst, nil
}

// DecodeRelay splits a relay payload; data aliases payload. Flags are
// ignored (reserved). A length beyond MaxData or beyond the payload is
// ErrMalformed.
func DecodeRelay(payload []byte) (cmd Command, data []byte, err error) {
	if len(payload) < relayHeaderLen {
		return 0, nil, fmt.Errorf("%w: relay payload of %d bytes", ErrMalformed, len(payload))
	}
	n := int(binary.BigEndian.Uint16(payload[2:4]))
	if n > MaxData || n > len(payload)-relayHeaderLen {
		return 0, nil, fmt.Errorf("%w: relay data length %d", ErrMalformed, n)
	}
	return Command(payload[0]), payload[relayHeaderLen : relayHeaderLen+n], nil
}

// ExtendLen is the size of an EXTEND body: next node ID(32) || client msg.
const ExtendLen = 32 + ClientMsgLen

// EncodeExtend builds an EXTEND body.
func EncodeExtend(next [32]byte, msg []byte) []byte {
	b := make([]byte, 0, ExtendLen)
	b = append(b, next[:]...)
	return append(b, msg...)
}

// DecodeExtend splits an EXTEND body; msg aliases b.
func DecodeExtend(b []byte) (next [32]byte, msg []byte, err error) {
	if len(b) != ExtendLen {
		return next, nil, fmt.Errorf("%w: EXTEND body of %d bytes, want %d", ErrMalformed, len(b), ExtendLen)
	}
	copy(next[:], b)
	return next, b[32:], nil
}

// DecodeExtended checks an EXTENDED body, which is the server reply.
func DecodeExtended(b []byte) (reply []byte, err error) {
	if len(b) != ServerMsgLen {
		return nil, fmt.Errorf("%w: EXTENDED body of %d bytes, want %d", ErrMalformed, len(b), ServerMsgLen)
	}
	return b, nil
}

// ExtendFailReason is the first byte of an EXTEND_FAILED body.
type ExtendFailReason uint8

// Reasons for EXTEND_FAILED (the values core/node sends); unknown values
// mean "other".
const (
	ReasonOther       ExtendFailReason = 0 // see the text
	ReasonNotMimic    ExtendFailReason = 1 // the next node is not one of the hop's mimics
	ReasonUnreachable ExtendFailReason = 2 // no link to the next node
	ReasonBusy        ExtendFailReason = 3 // circuit already extended, or out of resources
	ReasonMalformed   ExtendFailReason = 4 // the EXTEND body is malformed
	ReasonHandshake   ExtendFailReason = 5 // the next node refused the handshake
	ReasonTimeout     ExtendFailReason = 6 // the next node did not answer in time
)

// maxFailText bounds the text so the body fits a relay payload.
const maxFailText = MaxData - 1

// EncodeExtendFailed builds an EXTEND_FAILED body; text is cut to fit.
func EncodeExtendFailed(reason ExtendFailReason, text string) []byte {
	if len(text) > maxFailText {
		text = text[:maxFailText]
	}
	b := make([]byte, 0, 1+len(text))
	b = append(b, byte(reason))
	return append(b, text...)
}

// DecodeExtendFailed splits an EXTEND_FAILED body.
func DecodeExtendFailed(b []byte) (reason ExtendFailReason, text string, err error) {
	if len(b) < 1 {
		return 0, "", fmt.Errorf("%w: empty EXTEND_FAILED body", ErrMalformed)
	}
	return ExtendFailReason(b[0]), string(b[1:]), nil
}

// PingLen is the size of a PING or PONG body: id(8) || nonce(8). Both
// are random: the initiator keeps the send time to itself, keyed by id,
// so the hop that echoes a PING learns nothing of the sender's clock
// (a clock in it would link a node's tunnels by their offset).
const PingLen = 16

// EncodePing builds a PING (or PONG) body.
func EncodePing(id, nonce uint64) []byte {
	b := make([]byte, PingLen)
	binary.BigEndian.PutUint64(b, id)
	binary.BigEndian.PutUint64(b[8:], nonce)
	return b
}

// DecodePing splits a PING or PONG body.
func DecodePing(b []byte) (id, nonce uint64, err error) {
	if len(b) != PingLen {
		return 0, 0, fmt.Errorf("%w: PING body of %d bytes, want %d", ErrMalformed, len(b), PingLen)
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), nil
}
