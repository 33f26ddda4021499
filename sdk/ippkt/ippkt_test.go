package ippkt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var (
	c4 = netip.MustParseAddr("100.64.0.2")
	s4 = netip.MustParseAddr("192.0.2.7")
	c6 = netip.MustParseAddr("fd7a:7a72:7a6e::2")
	s6 = netip.MustParseAddr("2001:db8::7")
)

// tcpSeg is a TCP header (with options) plus payload.
func tcpSeg(sport, dport uint16, seq, ack uint32, flags byte, opts, payload []byte) []byte {
	h := make([]byte, 20, 20+len(opts)+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = byte((20+len(opts))/4) << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	h = append(h, opts...)
	return append(h, payload...)
}

func udpDgram(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func echo(v6 bool, id, seq uint16, data []byte) []byte {
	h := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}
	if v6 {
		h[0] = 128
	}
	return append(h, data...)
}

// build wraps a transport payload in an IP header (with optional IPv6
// extension headers) and fills every checksum from scratch.
func build(src, dst netip.Addr, proto uint8, ext []byte, t []byte) []byte {
	var pkt []byte
	tt := append([]byte(nil), t...)
	var csum int
	switch proto {
	case ProtoTCP:
		csum = 16
	case ProtoUDP:
		csum = 6
	default:
		csum = 2
	}
	if src.Is4() {
		pkt = []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0}
		a, b := src.As4(), dst.As4()
		pkt = append(append(pkt, a[:]...), b[:]...)
		binary.BigEndian.PutUint16(pkt[2:], uint16(20+len(tt)))
		binary.BigEndian.PutUint16(pkt[10:], Checksum(pkt, 0))
		if proto == ProtoICMP {
			binary.BigEndian.PutUint16(tt[csum:], Checksum(tt, 0))
		} else {
			binary.BigEndian.PutUint16(tt[csum:], Checksum(tt, PseudoSum(src, dst, proto, len(tt))))
		}
		return append(pkt, tt...)
	}
	first := proto
	if len(ext) > 0 {
		first = ext[len(ext)-1] // caller puts the first next-header value last
		ext = ext[:len(ext)-1]
	}
	pkt = []byte{0x60, 0, 0, 0, 0, 0, first, 64}
	a, b := src.As16(), dst.As16()
	pkt = append(append(pkt, a[:]...), b[:]...)
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(ext)+len(tt)))
	binary.BigEndian.PutUint16(tt[csum:], Checksum(tt, PseudoSum(src, dst, proto, len(tt))))
	return append(append(pkt, ext...), tt...)
}

func TestParse(t *testing.T) {
	// hop-by-hop (8 bytes) -> destination options (16 bytes) -> fragment
	// (offset 0) -> TCP; the first next-header value goes last.
	ext := []byte{
		60, 0, 1, 4, 0, 0, 0, 0, // HBH: next=60, len 8
		44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dest opts: next=44, len 16
		ProtoTCP, 0, 0, 0, 0, 0, 0, 1, // fragment: next=TCP, offset 0, M=0
		0, // first header: hop-by-hop
	}
	tests := []struct {
		name             string
		pkt              []byte
		proto            uint8
		sport, dport     uint16
		icmpType         uint8
		payloadOff       int
		fragment, hasTpt bool
	}{
		{"v4 tcp", build(c4, s4, ProtoTCP, nil, tcpSeg(40000, 80, 1, 0, 0x02, nil, nil)), ProtoTCP, 40000, 80, 0, 20, false, true},
		{"v4 udp", build(c4, s4, ProtoUDP, nil, udpDgram(5353, 53, []byte("q"))), ProtoUDP, 5353, 53, 0, 20, false, true},
		{"v4 icmp", build(c4, s4, ProtoICMP, nil, echo(false, 7, 1, []byte("ping"))), ProtoICMP, 0, 0, 8, 20, false, true},
		{"v6 tcp", build(c6, s6, ProtoTCP, nil, tcpSeg(40000, 443, 1, 0, 0x02, nil, nil)), ProtoTCP, 40000, 443, 0, 40, false, true},
		{"v6 udp", build(c6, s6, ProtoUDP, nil, udpDgram(1, 2, nil)), ProtoUDP, 1, 2, 0, 40, false, true},
		{"v6 icmp", build(c6, s6, ProtoICMPv6, nil, echo(true, 7, 1, nil)), ProtoICMPv6, 0, 0, 128, 40, false, true},
		{"v6 ext tcp", build(c6, s6, ProtoTCP, ext, tcpSeg(1, 2, 0, 0, 0x10, nil, []byte("x"))), ProtoTCP, 1, 2, 0, 72, true, true},
	}
	for _, tc := range tests {
		in, err := Parse(tc.pkt)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if in.Proto != tc.proto || in.SrcPort != tc.sport || in.DstPort != tc.dport || in.ICMPType != tc.icmpType ||
			in.PayloadOffset != tc.payloadOff || in.Fragment != tc.fragment || in.HasTransport() != tc.hasTpt || in.Length != len(tc.pkt) {
			t.Errorf("%s: got %+v", tc.name, in)
		}
		if (in.Version == 4) != in.Src.Is4() || (in.Src != c4 && in.Src != c6) || (in.Dst != s4 && in.Dst != s6) {
			t.Errorf("%s: addresses %v -> %v", tc.name, in.Src, in.Dst)
		}
		if err := Verify(tc.pkt); err != nil {
			t.Errorf("%s: Verify: %v", tc.name, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := build(c4, s4, ProtoTCP, nil, tcpSeg(1, 2, 0, 0, 2, nil, nil))
	good6 := build(c6, s6, ProtoUDP, nil, udpDgram(1, 2, nil))
	bad := func(p []byte, f func([]byte)) []byte { p = append([]byte(nil), p...); f(p); return p }
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"version", []byte{0x50}, ErrVersion},
		{"v4 short", good[:19], ErrTruncated},
		{"v4 total > len", good[:30], ErrTruncated},
		{"v4 ihl", bad(good, func(p []byte) { p[0] = 0x44 }), ErrMalformed},
		{"tcp doff", bad(good, func(p []byte) { p[32] = 0xf0 }), ErrMalformed},
		{"v6 short", good6[:39], ErrTruncated},
		{"v6 payload len", bad(good6, func(p []byte) { p[5] = 200 }), ErrTruncated},
		{"v6 udp short", bad(good6, func(p []byte) { p[5] = 4 }), ErrTruncated},
		{"v6 endless ext", bad(good6, func(p []byte) { p[6] = 0; p[40] = 0; p[41] = 0 }), ErrTruncated},
	}
	for _, tc := range tests {
		if _, err := Parse(tc.pkt); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	// Later fragments have no transport header but parse fine.
	frag := bad(good, func(p []byte) { p[6] = 0x00; p[7] = 0x10 })
	binary.BigEndian.PutUint16(frag[10:], 0)
	binary.BigEndian.PutUint16(frag[10:], Checksum(frag[:20], 0))
	in, err := Parse(frag)
	if err != nil || in.HasTransport() || !in.Fragment || in.FragmentOffset != 128 || in.DstPort != 0 {
		t.Fatalf("fragment: %+v %v", in, err)
	}
}

func TestSetAddr(t *testing.T) {
	pkts := [][]byte{
		build(c4, s4, ProtoTCP, nil, tcpSeg(1, 2, 3, 4, 0x18, nil, []byte("hello"))),
		build(c4, s4, ProtoUDP, nil, udpDgram(1, 2, []byte("odd"))),
		build(c4, s4, ProtoICMP, nil, echo(false, 1, 2, nil)),
		build(c6, s6, ProtoTCP, nil, tcpSeg(1, 2, 3, 4, 0x18, nil, []byte("hello"))),
		build(c6, s6, ProtoUDP, nil, udpDgram(1, 2, []byte("odd"))),
		build(c6, s6, ProtoICMPv6, nil, echo(true, 1, 2, []byte("x"))),
	}
	n4, n6 := netip.MustParseAddr("100.80.1.2"), netip.MustParseAddr("fd00:7a72:7a6e:e::1:2")
	for i, p := range pkts {
		in, _ := Parse(p)
		na := n4
		if in.Version == 6 {
			na = n6
		}
		if err := SetSrc(p, in, na); err != nil {
			t.Fatal(err)
		}
		if err := SetDst(p, in, na); err != nil {
			t.Fatal(err)
		}
		if err := Verify(p); err != nil {
			t.Errorf("packet %d after rewrite: %v", i, err)
		}
		got, _ := Parse(p)
		if got.Src != na || got.Dst != na {
			t.Errorf("packet %d: %v -> %v", i, got.Src, got.Dst)
		}
		if err := SetSrc(p, got, n6); err == nil && in.Version == 4 {
			t.Errorf("packet %d: family change accepted", i)
		}
	}
	// IPv4 UDP without checksum stays without.
	p := build(c4, s4, ProtoUDP, nil, udpDgram(1, 2, nil))
	p[26], p[27] = 0, 0
	in, _ := Parse(p)
	_ = SetSrc(p, in, n4)
	if p[26] != 0 || p[27] != 0 {
		t.Fatal("zero UDP checksum was filled in")
	}
}

func TestUnreachable(t *testing.T) {
	big := make([]byte, 1200)
	for _, orig := range [][]byte{
		build(c4, s4, ProtoUDP, nil, udpDgram(5000, 53, big)),
		build(c4, s4, ProtoTCP, nil, tcpSeg(5000, 80, 9, 0, 2, nil, nil)),
		build(c6, s6, ProtoUDP, nil, udpDgram(5000, 53, big)),
		build(c6, s6, ProtoUDP, nil, udpDgram(5000, 53, append(big, big...)[:1232-8])),
	} {
		in0, _ := Parse(orig)
		r, err := Unreachable(make([]byte, 0, 1500), orig)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(r); err != nil {
			t.Fatalf("reply: %v", err)
		}
		in, _ := Parse(r)
		limit := 576
		wantType := uint8(3)
		if in.Version == 6 {
			limit, wantType = 1280, 1
		}
		if in.Src != in0.Dst || in.Dst != in0.Src || in.ICMPType != wantType || len(r) > limit {
			t.Fatalf("reply %+v len %d", in, len(r))
		}
		code := r[in.PayloadOffset+1]
		if (in.Version == 4 && code != 13) || (in.Version == 6 && code != 1) {
			t.Fatalf("code %d", code)
		}
		quoted := r[in.PayloadOffset+8:]
		if want := min(len(orig), limit-in.PayloadOffset-8); !bytes.Equal(quoted, orig[:want]) {
			t.Fatalf("quoted %d bytes, want %d", len(quoted), want)
		}
		// Never answer an ICMP error.
		if _, err := Unreachable(nil, r); !errors.Is(err, ErrNoReply) {
			t.Fatalf("answered an ICMP error: %v", err)
		}
	}
	if _, err := Unreachable(nil, build(netip.IPv4Unspecified(), s4, ProtoUDP, nil, udpDgram(1, 2, nil))); !errors.Is(err, ErrNoReply) {
		t.Fatal("answered an unspecified source")
	}
}

func TestReset(t *testing.T) {
	for _, src := range []netip.Addr{c4, c6} {
		dst := s4
		if src.Is6() {
			dst = s6
		}
		syn := build(src, dst, ProtoTCP, nil, tcpSeg(40000, 80, 1000, 0, 0x02, nil, nil))
		r, err := Reset(nil, syn)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(r); err != nil {
			t.Fatal(err)
		}
		in, _ := Parse(r)
		h := r[in.PayloadOffset:]
		if in.Src != dst || in.Dst != src || in.SrcPort != 80 || in.DstPort != 40000 || h[13] != 0x14 ||
			binary.BigEndian.Uint32(h[8:]) != 1001 || binary.BigEndian.Uint32(h[4:]) != 0 {
			t.Fatalf("reset to SYN: %+v % x", in, h)
		}
		ackd := build(src, dst, ProtoTCP, nil, tcpSeg(40000, 80, 1000, 777, 0x18, nil, []byte("data")))
		r, _ = Reset(r[:0], ackd)
		in, _ = Parse(r)
		h = r[in.PayloadOffset:]
		if h[13] != 0x04 || binary.BigEndian.Uint32(h[4:]) != 777 {
			t.Fatalf("reset to ACK: % x", h)
		}
		if _, err := Reset(nil, r); !errors.Is(err, ErrNoReply) {
			t.Fatal("answered a reset")
		}
	}
}

func TestEchoReply(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst, proto := c4, s4, uint8(ProtoICMP)
		if v6 {
			src, dst, proto = c6, s6, ProtoICMPv6
		}
		req := build(src, dst, proto, nil, echo(v6, 0x1234, 9, []byte("abcdefg")))
		r, err := EchoReply(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(r); err != nil {
			t.Fatal(err)
		}
		in, _ := Parse(r)
		b := r[in.PayloadOffset:]
		if in.Src != dst || in.Dst != src || (b[0] != 0 && b[0] != 129) || !bytes.Equal(b[4:], []byte{0x12, 0x34, 0, 9, 'a', 'b', 'c', 'd', 'e', 'f', 'g'}) {
			t.Fatalf("echo reply % x", r)
		}
	}
}

func TestClampMSS(t *testing.T) {
	mssOpt := func(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }
	for _, tc := range []struct {
		name  string
		opts  []byte
		flags byte
		want  bool
	}{
		{"even", mssOpt(1460), 0x02, true},
		{"odd offset", append([]byte{1}, append(mssOpt(1460), 1, 1, 1)...), 0x02, true},
		{"after others", append(append([]byte{4, 2, 1, 3, 3, 7}, mssOpt(8960)...), 0, 0), 0x12, true},
		{"small", mssOpt(536), 0x02, false},
		{"not syn", mssOpt(1460), 0x10, false},
		{"no option", []byte{1, 1, 1, 0}, 0x02, false},
		{"bad length", []byte{3, 0, 0, 0}, 0x02, false},
	} {
		for _, src := range []netip.Addr{c4, c6} {
			dst := s4
			if src.Is6() {
				dst = s6
			}
			p := build(src, dst, ProtoTCP, nil, tcpSeg(1, 2, 3, 0, tc.flags, tc.opts, nil))
			if got := ClampMSS(p, 1200); got != tc.want {
				t.Errorf("%s: changed=%v", tc.name, got)
			}
			if err := Verify(p); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if tc.want && !bytes.Contains(p, []byte{2, 4, 0x04, 0xb0}) {
				t.Errorf("%s: MSS not 1200: % x", tc.name, p)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	p := build(c6, s6, ProtoTCP, nil, tcpSeg(1, 2, 3, 0, 2, []byte{2, 4, 5, 0xb4}, nil))
	buf := make([]byte, 0, 1500)
	n := testing.AllocsPerRun(100, func() {
		in, _ := Parse(p)
		_ = SetSrc(p, in, c6)
		ClampMSS(p, 1400)
		_, _ = Unreachable(buf[:0], p)
		_, _ = Reset(buf[:0], p)
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(build(c4, s4, ProtoTCP, nil, tcpSeg(1, 2, 3, 4, 2, nil, nil)))
	f.Add(build(c6, s6, ProtoICMPv6, nil, echo(true, 1, 1, nil)))
	f.Add(build(c6, s6, ProtoUDP, []byte{ProtoUDP, 0, 0, 0, 0, 0, 0, 0, 44}, udpDgram(1, 2, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := Parse(b)
		if err != nil {
			return
		}
		if in.Length > len(b) || in.PayloadOffset > in.Length {
			t.Fatalf("offsets out of range: %+v len %d", in, len(b))
		}
		buf := make([]byte, 0, 1500)
		for _, build := range []func([]byte, []byte) ([]byte, error){Unreachable, Reset, EchoReply} {
			if r, err := build(buf[:0], b); err == nil {
				if err := Verify(r); err != nil {
					t.Fatalf("built reply fails Verify: %v", err)
				}
			}
		}
		wasValid := Verify(b) == nil
		a := in.Src
		if err := SetSrc(b, in, a.Next()); err == nil && wasValid && !in.Fragment {
			if err := Verify(b); err != nil {
				t.Fatalf("rewrite broke checksum: %v", err)
			}
		}
	})
}

func FuzzClampMSS(f *testing.F) {
	f.Add(build(c4, s4, ProtoTCP, nil, tcpSeg(1, 2, 3, 4, 2, []byte{2, 4, 5, 0xb4}, nil)), uint16(1200))
	f.Add(build(c6, s6, ProtoTCP, nil, tcpSeg(1, 2, 3, 4, 2, []byte{1, 2, 4, 0x23, 0x28, 1, 1, 1}, nil)), uint16(536))
	f.Fuzz(func(t *testing.T, b []byte, mss uint16) {
		wasValid := Verify(b) == nil
		before := append([]byte(nil), b...)
		changed := ClampMSS(b, mss)
		if !changed && !bytes.Equal(before, b) {
			t.Fatal("reported no change but modified the packet")
		}
		if changed && wasValid {
			if err := Verify(b); err != nil {
				t.Fatalf("clamp broke checksum: %v", err)
			}
		}
	})
}

func TestAppendICMP(t *testing.T) {
	for _, pair := range [][2]netip.Addr{{s4, c4}, {s6, c6}} {
		msg := []byte{0, 0, 0, 0, 0, 1, 0, 2, 'h', 'i', '!'}
		if pair[0].Is6() {
			msg[0] = 129
		}
		p, err := AppendICMP(nil, pair[0], pair[1], msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(p); err != nil {
			t.Fatal(err)
		}
		in, _ := Parse(p)
		if in.Src != pair[0] || in.Dst != pair[1] || !bytes.Equal(p[in.PayloadOffset+4:], msg[4:]) {
			t.Fatalf("% x", p)
		}
	}
	if _, err := AppendICMP(nil, s4, c6, make([]byte, 8)); err == nil {
		t.Fatal("mixed families accepted")
	}
}

func TestAppendUDP(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"100.64.0.2:40000", "192.0.2.7:53"},
		{"[fd7a:7a72:7a6e::2]:40000", "[2001:db8::7]:53"},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		pkt, err := AppendUDP(nil, src, dst, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := Parse(pkt)
		if err != nil {
			t.Fatalf("%s -> %s: %v", src, dst, err)
		}
		if in.Proto != ProtoUDP || in.Src != src.Addr() || in.Dst != dst.Addr() || in.SrcPort != src.Port() || in.DstPort != dst.Port() {
			t.Errorf("%s -> %s parsed as %+v", src, dst, in)
		}
		if err := Verify(pkt); err != nil {
			t.Errorf("%s -> %s: checksums: %v", src, dst, err)
		}
		if string(pkt[len(pkt)-5:]) != "hello" {
			t.Errorf("payload not at the end: %x", pkt)
		}
	}
	if _, err := AppendUDP(nil, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("[::1]:1"), nil); err == nil {
		t.Error("mixed families accepted")
	}
}
