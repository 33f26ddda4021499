package link

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Discovery messages (docs/PROTOCOL.md §3, type 6) carry what discovery
// backends say to each other (gossip digests and signed descriptors).
// They are not encrypted: membership is public, and every descriptor in
// them is signed and verified before use. Body: length(2) || data,
// zero-padded to the frame size like every other frame.

// MaxGossip is the most data one discovery frame carries.
const MaxGossip = BodySize - 2

// EncodeGossip builds a TypeGossip frame.
func EncodeGossip(data []byte) ([]byte, error) {
	if len(data) == 0 || len(data) > MaxGossip {
		return nil, fmt.Errorf("link: discovery message is %d bytes, want 1..%d", len(data), MaxGossip)
	}
	f := newFrame(TypeGossip, 0)
	binary.BigEndian.PutUint16(f[HeaderSize:], uint16(len(data)))
	copy(f[HeaderSize+2:], data)
	return f, nil
}

// DecodeGossip parses a TypeGossip frame; the data does not alias frame.
func DecodeGossip(frame []byte) ([]byte, error) {
	t, ri, err := Header(frame)
	if err != nil {
		return nil, err
	}
	if t != TypeGossip || ri != 0 {
		return nil, fmt.Errorf("%w: type %d index %d, want type %d index 0", ErrMalformed, t, ri, TypeGossip)
	}
	n := int(binary.BigEndian.Uint16(frame[HeaderSize:]))
	if n == 0 || n > MaxGossip {
		return nil, fmt.Errorf("%w: discovery message length %d", ErrMalformed, n)
	}
	if err := checkControl(frame, TypeGossip, 2+n); err != nil {
		return nil, err
	}
	return bytes.Clone(frame[HeaderSize+2 : HeaderSize+2+n]), nil
}
