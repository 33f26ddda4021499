package ptcap

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// pcapOf writes segments as an Ethernet pcap (as tcpdump -i lo does).
func pcapOf(segs []Segment) []byte {
	var b bytes.Buffer
	gh := make([]byte, 24)
	binary.LittleEndian.PutUint32(gh[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(gh[4:], 2)
	binary.LittleEndian.PutUint16(gh[6:], 4)
	binary.LittleEndian.PutUint32(gh[16:], 65535)
	binary.LittleEndian.PutUint32(gh[20:], 1)
	b.Write(gh)
	for _, s := range segs {
		var l4 []byte
		proto := byte(6)
		if s.UDP {
			proto = 17
			l4 = make([]byte, 8)
			binary.BigEndian.PutUint16(l4[4:], uint16(8+len(s.Payload)))
		} else {
			l4 = make([]byte, 20)
			l4[12] = 5 << 4
		}
		binary.BigEndian.PutUint16(l4[0:], s.Src.Port())
		binary.BigEndian.PutUint16(l4[2:], s.Dst.Port())
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)+len(s.Payload)))
		ip[9] = proto
		a, d := s.Src.Addr().As4(), s.Dst.Addr().As4()
		copy(ip[12:], a[:])
		copy(ip[16:], d[:])
		frame := append(append(append(make([]byte, 14), ip...), l4...), s.Payload...)
		frame[12], frame[13] = 0x08, 0x00
		rh := make([]byte, 16)
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(len(frame)))
		b.Write(rh)
		b.Write(frame)
	}
	return b.Bytes()
}

var (
	a = netip.MustParseAddrPort("127.1.0.1:40000")
	z = netip.MustParseAddrPort("127.2.0.1:443")
)

// plaintext is what the pt plugin writes before the PT: a hello, then
// length-prefixed frames, several to a segment at times.
func plaintext(rng *rand.Rand, n int) []Segment {
	hello := append([]byte("TZPT\x01\x0e"), "127.1.0.1:7000"...)
	fr := make([]byte, 1410)
	binary.BigEndian.PutUint16(fr, 1408)
	segs := []Segment{{Src: a, Dst: z, Payload: append(append([]byte{}, hello...), fr...)}}
	for range n {
		k := 1 + rng.IntN(2)
		segs = append(segs, Segment{Src: a, Dst: z, Payload: bytes.Repeat(fr, k)})
	}
	return segs
}

// obfuscated stands in for a PT's output: random bytes in random sizes.
func obfuscated(rng *rand.Rand, n int) []Segment {
	var segs []Segment
	for range n {
		p := make([]byte, 100+rng.IntN(3000))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		segs = append(segs, Segment{Src: a, Dst: z, Payload: p})
	}
	return segs
}

func check(t *testing.T, segs []Segment) (Report, error) {
	t.Helper()
	got, err := Read(bytes.NewReader(pcapOf(segs)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(segs) {
		t.Fatalf("read %d segments of %d", len(got), len(segs))
	}
	r := Analyze(got, 1408)
	return r, r.Check()
}

// The check sees the frame structure where it is (the plaintext side of
// the plugin, or a link over udp) and passes random-looking streams.
func TestCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r, err := check(t, obfuscated(rng, 500))
	if err != nil {
		t.Fatalf("random segments fail: %v (%v)", err, r)
	}
	t.Log("obfuscated:", r)

	r, err = check(t, plaintext(rng, 500))
	if err == nil {
		t.Fatalf("plaintext pt streams pass: %v", r)
	}
	for _, want := range []string{"hello", "most common", "frame-sized", "frame length"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("plaintext: %v; want a complaint about %s", err, want)
		}
	}
	t.Log("plaintext:", r, err)

	udp := obfuscated(rng, 300)
	for range 10 {
		udp = append(udp, Segment{UDP: true, Src: a, Dst: z, Payload: make([]byte, 1408)})
	}
	if _, err := check(t, udp); err == nil || !strings.Contains(err.Error(), "UDP") {
		t.Errorf("UDP frames: %v", err)
	}
	if _, err := check(t, obfuscated(rng, 20)); err == nil || !strings.Contains(err.Error(), "only 20") {
		t.Errorf("a capture of 20 segments: %v", err)
	}
}

func TestReadGarbage(t *testing.T) {
	if _, err := Read(strings.NewReader("not a pcap at all, no")); err == nil {
		t.Fatal("no error")
	}
	// A capture cut short keeps what it holds.
	b := pcapOf(obfuscated(rand.New(rand.NewPCG(3, 4)), 3))
	got, err := Read(bytes.NewReader(b[:len(b)-10]))
	if err != nil || len(got) != 2 {
		t.Fatalf("truncated: %d segments, %v", len(got), err)
	}
}
