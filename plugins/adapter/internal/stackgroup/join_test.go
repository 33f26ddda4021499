package stackgroup

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/gso"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// segments cuts data into checked TCP segments of mss bytes (IPv4 or
// IPv6), the last with PSH, as a peer's stack would send them.
func segments(t *testing.T, v6 bool, data []byte, mss int) [][]byte {
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv6MinimumSize + header.TCPMinimumSize,
		Payload:            buffer.MakeWithData(append([]byte(nil), data...)),
	})
	th := header.TCP(pkb.TransportHeader().Push(header.TCPMinimumSize))
	th.Encode(&header.TCPFields{SrcPort: 80, DstPort: 4000, SeqNum: 1000, AckNum: 5, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 512})
	if v6 {
		ip := header.IPv6(pkb.NetworkHeader().Push(header.IPv6MinimumSize))
		ip.Encode(&header.IPv6Fields{TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: tcpip.AddrFrom16([16]byte{0xfd, 15: 1}), DstAddr: tcpip.AddrFrom16([16]byte{0xfd, 15: 2})})
		pkb.GSOOptions = stack.GSO{Type: stack.GSOTCPv6, NeedsCsum: true, MSS: uint16(mss)}
	} else {
		ip := header.IPv4(pkb.NetworkHeader().Push(header.IPv4MinimumSize))
		ip.Encode(&header.IPv4Fields{TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2})})
		pkb.GSOOptions = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, MSS: uint16(mss)}
	}
	var s gso.Segmenter
	if !s.Load(pkb) {
		t.Fatal("Load")
	}
	var out [][]byte
	for !s.Done() {
		b := make([]byte, 2048)
		out = append(out, b[:s.Next(b)])
	}
	return out
}

// TestJoinRun: the segments of a run become one packet whose headers
// check and whose payload is the run's; a corrupted segment ends a run
// and is not taken.
func TestJoinRun(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		data := make([]byte, 10*1000+300)
		for i := range data {
			data[i] = byte(i * 31)
		}
		segs := segments(t, v6, data, 1000)
		first, ok := parseSeg(segs[0])
		if !ok || !first.valid(segs[0]) {
			t.Fatalf("v6=%v: first segment refused", v6)
		}
		total, last := first.payload, first
		for _, q := range segs[1:] {
			b, ok := parseSeg(q)
			if !ok || !first.follows(segs[0], b, q, total) || !b.valid(q) {
				t.Fatalf("v6=%v: segment at %d not taken", v6, total)
			}
			total += b.payload
			last = b
		}
		pkb := joinRun(segs, first, last, total)
		got := pkb.ToBuffer()
		b := got.Flatten()
		pkb.DecRef()
		if !v6 && !header.IPv4(b).IsChecksumValid() {
			t.Fatal("joined IPv4 header checksum")
		}
		in, err := ippkt.Parse(b)
		if err != nil || in.Length != len(b) {
			t.Fatalf("v6=%v: joined packet: %v (length %d of %d)", v6, err, in.Length, len(b))
		}
		th := header.TCP(b[in.PayloadOffset:])
		if !bytes.Equal(b[in.PayloadOffset+header.TCPMinimumSize:], data) || th.SequenceNumber() != 1000 ||
			th.Flags() != header.TCPFlagAck|header.TCPFlagPsh {
			t.Fatalf("v6=%v: joined payload or header wrong (seq %d flags %v)", v6, th.SequenceNumber(), th.Flags())
		}
		// A corrupted payload byte: the segment is not valid, so not joined.
		bad := append([]byte(nil), segs[3]...)
		bad[len(bad)-1] ^= 1
		if b, ok := parseSeg(bad); !ok || b.valid(bad) {
			t.Fatalf("v6=%v: a corrupted segment passed", v6)
		}
		// A gap in sequence numbers ends a run.
		b2, _ := parseSeg(segs[2])
		if first.follows(segs[0], b2, segs[2], first.payload) {
			t.Fatalf("v6=%v: a segment after a gap followed", v6)
		}
	}
}
