package kcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// FuzzSegment checks the header parser the receive loop routes by: it
// reads only what the packet holds, and finds the first segment behind a
// FEC data header.
func FuzzSegment(f *testing.F) {
	seg := make([]byte, SegmentOverhead)
	binary.LittleEndian.PutUint32(seg, 7)
	seg[4] = cmdPush
	f.Add(seg)
	fec := append([]byte{1, 0, 0, 0, fecTypeData, 0, 0, 0}, seg...)
	f.Add(fec)
	f.Add([]byte{1, 0, 0, 0, fecTypeParity, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := parseSegment(b)
		if !ok {
			return
		}
		body := b
		if len(b) >= 6 && binary.LittleEndian.Uint16(b[4:]) == fecTypeData {
			if len(b) < fecHeader {
				t.Fatalf("a segment parsed from a %d-byte packet with a FEC data header", len(b))
			}
			body = b[fecHeader:]
		}
		if len(body) < SegmentOverhead {
			t.Fatalf("a segment parsed from %d bytes; a header is %d", len(body), SegmentOverhead)
		}
		if s.conv != binary.LittleEndian.Uint32(body) || s.cmd != body[4] || s.sn != binary.LittleEndian.Uint32(body[12:]) {
			t.Fatalf("segment %+v does not match its bytes %x", s, body[:SegmentOverhead])
		}
	})
}

// FuzzRoute feeds arbitrary packets to a listening transport's router,
// from three strangers and, in one case of four, with the established
// peer's own address as a spoofed source. Nothing may crash and each
// stranger gets at most one session; strangers' packets must not disturb
// the established session, which still carries data both ways.
//
// A packet spoofing the peer's address (on a pair of its own) must not
// disturb that pair either: a spoofed opener (PUSH, sn 0, a new conv)
// only starts a candidate session beside the live one (receive.go).
func FuzzRoute(f *testing.F) {
	seg := make([]byte, SegmentOverhead)
	binary.LittleEndian.PutUint32(seg, 12345)
	seg[4] = cmdPush
	f.Add(seg, uint8(0))
	f.Add(seg, uint8(1))
	f.Add(append([]byte{1, 0, 0, 0, fecTypeData, 0, 0, 0}, seg...), uint8(2))
	f.Add([]byte{1, 0, 0, 0, fecTypeParity, 0, 9, 9}, uint8(3))
	a, b := newNode(f, "", nil), newNode(f, "", nil)
	a.send(f, b.addr, []byte("hello"))
	b.expect(f, "hello")
	n := 0
	f.Fuzz(func(t *testing.T, pkt []byte, who uint8) {
		n++
		if who%4 == 0 { // spoof the peer: on a pair of its own, closed after
			c, d := newNode(t, "", nil), newNode(t, "", nil)
			c.send(t, d.addr, []byte("hello"))
			d.expect(t, "hello")
			d.tr.(*kcpTransport).route(c.addr, bytes.Clone(pkt))
			c.send(t, d.addr, []byte("after"))
			d.expect(t, "after")
			d.send(t, c.addr, []byte("back"))
			c.expect(t, "back")
			return
		}
		bt := b.tr.(*kcpTransport)
		bt.route(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 40000+uint16(who%4)), bytes.Clone(pkt))
		bt.mu.Lock()
		peers := len(bt.peers)
		bt.mu.Unlock()
		if peers > 4 {
			t.Fatalf("%d sessions after packets from one peer and three strangers", peers)
		}
		msg := fmt.Sprintf("still up %d", n)
		b.send(t, a.addr, []byte(msg))
		a.expect(t, msg)
		a.send(t, b.addr, []byte(msg))
		b.expect(t, msg)
	})
}
