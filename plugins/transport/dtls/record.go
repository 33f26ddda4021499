package dtls

// Just enough of the DTLS 1.2 record layer (RFC 6347 §4.1) for the
// receive loop to route a datagram before pion sees it: the first
// record's header and, for a ClientHello, its random.

const (
	recordHeaderLen    = 13 // type(1) version(2) epoch(2) sequence(6) length(2)
	handshakeHeaderLen = 12 // type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)

	contentHandshake       = 22
	contentApplicationData = 23
	handshakeClientHello   = 1
)

// record is the first record header of a datagram.
type record struct {
	contentType uint8
	epoch       uint16
	seq         uint64 // 48-bit sequence number within the epoch
	length      int    // of the record's body
}

func parseRecord(b []byte) (record, bool) {
	if len(b) < recordHeaderLen {
		return record{}, false
	}
	r := record{
		contentType: b[0],
		epoch:       uint16(b[3])<<8 | uint16(b[4]),
		length:      int(b[11])<<8 | int(b[12]),
	}
	for _, c := range b[5:11] {
		r.seq = r.seq<<8 | uint64(c)
	}
	if recordHeaderLen+r.length > len(b) {
		return record{}, false
	}
	return r, true
}

// clientHelloRandom returns the random of a plaintext ClientHello that
// starts datagram b (its first fragment carries the random).
func clientHelloRandom(b []byte) (random [32]byte, ok bool) {
	r, ok := parseRecord(b)
	if !ok || r.contentType != contentHandshake || r.epoch != 0 {
		return random, false
	}
	h := b[recordHeaderLen : recordHeaderLen+r.length]
	const randomAt = handshakeHeaderLen + 2 // after client_version
	if len(h) < randomAt+32 || h[0] != handshakeClientHello || h[6]|h[7]|h[8] != 0 {
		return random, false
	}
	copy(random[:], h[randomAt:])
	return random, true
}
