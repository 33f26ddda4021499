package stackgroup

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Joining runs of TCP segments on their raw bytes, in place of gVisor's
// GRO (which this package used before): GRO makes a packet buffer per
// segment (a pooled chunk cleared and filled, a PacketBuffer), looks its
// flow up in buckets and trims and merges views; in a download that was
// about half of Stack.Write. Here a run of consecutive full segments of
// one connection in one Write becomes one packet buffer, each segment's
// checksums checked on its bytes and its payload copied once.

// seg is what join reads of a TCP segment.
type seg struct {
	l3, hl  int // IP header length, IP+TCP header length
	end     int // IP total length
	payload int
	seq     uint32
	flags   uint8
}

// parseSeg reads p as a TCP segment join may take: IPv4 without options
// and not a fragment, or IPv6 with TCP as its next header; flags ACK or
// ACK|PSH; some payload; lengths consistent.
func parseSeg(p []byte) (seg, bool) {
	var s seg
	switch {
	case len(p) >= header.IPv4MinimumSize+header.TCPMinimumSize && p[0] == 0x45 &&
		p[9] == byte(header.TCPProtocolNumber) && binary.BigEndian.Uint16(p[6:])&0x3fff == 0:
		s.l3, s.end = header.IPv4MinimumSize, int(binary.BigEndian.Uint16(p[2:]))
	case len(p) >= header.IPv6MinimumSize+header.TCPMinimumSize && p[0]>>4 == 6 &&
		p[6] == byte(header.TCPProtocolNumber):
		s.l3, s.end = header.IPv6MinimumSize, header.IPv6MinimumSize+int(binary.BigEndian.Uint16(p[4:]))
	default:
		return s, false
	}
	if s.end > len(p) || s.end < s.l3+header.TCPMinimumSize {
		return s, false
	}
	t := p[s.l3:]
	s.hl = s.l3 + int(t[12]>>4)*4
	s.payload = s.end - s.hl
	s.seq = binary.BigEndian.Uint32(t[4:])
	s.flags = t[13]
	ack, psh := uint8(header.TCPFlagAck), uint8(header.TCPFlagPsh)
	return s, s.hl >= s.l3+header.TCPMinimumSize && s.payload > 0 && s.flags&^psh == ack
}

// valid checks the IPv4 header checksum and the TCP checksum.
func (s seg) valid(p []byte) bool {
	var x uint16
	if s.l3 == header.IPv4MinimumSize {
		if checksum.Checksum(p[:s.l3], 0) != 0xffff {
			return false
		}
		x = checksum.Checksum(p[12:20], 0)
	} else {
		x = checksum.Checksum(p[8:40], 0)
	}
	x = checksum.Combine(x, uint16(s.end-s.l3))
	x = checksum.Combine(x, uint16(header.TCPProtocolNumber))
	return checksum.Checksum(p[s.l3:s.end], x) == 0xffff
}

// follows reports whether q (parsed as b) continues the run that a
// (parsed as s) starts, with n payload bytes so far: the same addresses,
// ports, acknowledgement, window and options, the next sequence number.
func (s seg) follows(p []byte, b seg, q []byte, n int) bool {
	if b.l3 != s.l3 || b.hl != s.hl || b.seq != s.seq+uint32(n) || b.payload > s.payload ||
		n+b.payload > maxJoined-s.hl {
		return false
	}
	if s.l3 == header.IPv4MinimumSize {
		if string(p[12:20]) != string(q[12:20]) {
			return false
		}
	} else if string(p[8:40]) != string(q[8:40]) {
		return false
	}
	t, u := p[s.l3:s.hl], q[s.l3:s.hl]
	// ports, ack number, data offset; window; options.
	return string(t[:4]) == string(u[:4]) && string(t[8:13]) == string(u[8:13]) &&
		string(t[14:16]) == string(u[14:16]) && string(t[header.TCPMinimumSize:]) == string(u[header.TCPMinimumSize:])
}

// maxJoined bounds a joined packet (the IP length fields).
const maxJoined = 65535 - header.IPv6MinimumSize

// joinRun builds one packet of run (segments that follow one another,
// their checksums checked): the first's headers, every payload, the IP
// length fields and the IPv4 header checksum set, PSH if the last had
// it. Its TCP checksum is left stale: the packet is marked validated.
func joinRun(run [][]byte, first seg, last seg, total int) *stack.PacketBuffer {
	v := buffer.NewViewSize(first.hl + total)
	b := v.AsSlice()
	copy(b, run[0][:first.hl])
	off := first.hl
	for _, q := range run {
		hl := first.hl
		end := len(q)
		if first.l3 == header.IPv4MinimumSize {
			end = int(binary.BigEndian.Uint16(q[2:]))
		} else {
			end = header.IPv6MinimumSize + int(binary.BigEndian.Uint16(q[4:]))
		}
		off += copy(b[off:], q[hl:end])
	}
	if first.l3 == header.IPv4MinimumSize {
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:], ^checksum.Checksum(b[:header.IPv4MinimumSize], 0))
	} else {
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)-header.IPv6MinimumSize))
	}
	b[first.l3+13] |= last.flags & uint8(header.TCPFlagPsh)
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	pkb.RXChecksumValidated = true
	return pkb
}
