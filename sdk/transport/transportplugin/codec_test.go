package transportplugin

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// encode is the reference encoder the gatherer is checked against: it
// appends to dst (which must be empty) one message holding as many
// leading packets of pkts as fit in datachan.MaxMessage.
func encode(dst []byte, pkts []transport.Packet) ([]byte, int, error) {
	dst = append(dst, 0, 0)
	k := 0
	for _, p := range pkts {
		if p.N < 0 || p.N > maxPayload || p.N > len(p.Buf) {
			return nil, 0, fmt.Errorf("transportplugin: datagram of %d bytes (buffer %d) cannot be sent; the limit is %d", p.N, len(p.Buf), maxPayload)
		}
		if k > 0 && (len(dst)+headerLen+p.N > datachan.MaxMessage || k == 0xffff) {
			break
		}
		a16 := p.Addr.Addr().As16()
		dst = append(dst, a16[:]...)
		dst = binary.BigEndian.AppendUint16(dst, p.Addr.Port())
		dst = binary.BigEndian.AppendUint16(dst, uint16(p.N))
		dst = append(dst, p.Buf[:p.N]...)
		k++
	}
	binary.BigEndian.PutUint16(dst, uint16(k))
	return dst, k, nil
}

func TestCodecRoundTrip(t *testing.T) {
	in := []transport.Packet{
		{Addr: netip.MustParseAddrPort("192.0.2.1:9"), Buf: []byte("hello"), N: 5},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:443"), Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram},
	}
	msg, k, err := encode(nil, in)
	if err != nil || k != 2 {
		t.Fatalf("encode: %d, %v", k, err)
	}
	var d decoder
	if err := d.reset(msg); err != nil || d.left != 2 {
		t.Fatalf("reset: %v, left %d", err, d.left)
	}
	for _, want := range in {
		addr, data, err := d.next()
		if err != nil || addr != want.Addr || string(data) != string(want.Buf[:want.N]) {
			t.Fatalf("next = %v, %d bytes, %v; want %v", addr, len(data), err, want.Addr)
		}
	}
}

func TestEncodeSplits(t *testing.T) {
	big := make([]transport.Packet, 200)
	for i := range big {
		big[i] = transport.Packet{Buf: make([]byte, 1400), N: 1400}
	}
	msg, k, err := encode(nil, big)
	if err != nil || k == 0 || k == len(big) || len(msg) > 128<<10 {
		t.Fatalf("encode of 200×1400 B: %d packets in %d bytes, %v; want a split under 128 KiB", k, len(msg), err)
	}
}

func FuzzDecode(f *testing.F) {
	msg, _, _ := encode(nil, []transport.Packet{{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Buf: []byte("x"), N: 1}})
	f.Add(msg)
	f.Add([]byte{0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		if d.reset(b) != nil {
			return
		}
		for i := 0; d.left > 0 && i < 70000; i++ {
			if _, data, err := d.next(); err == nil && len(data) > len(b) {
				t.Fatal("packet longer than the message")
			}
		}
	})
}

// gather makes, byte for byte, the messages encode makes, and splits a
// batch at the same places (or earlier, at gatherMax packets).
func TestGatherMatchesEncode(t *testing.T) {
	var pkts []transport.Packet
	for i := range 300 {
		n := []int{0, 1, transport.MaxDatagram, 700}[i%4]
		buf := make([]byte, n+3)
		for j := range buf {
			buf[j] = byte(i + j)
		}
		addr := netip.MustParseAddrPort("192.0.2.1:9")
		if i%3 == 0 {
			addr = netip.MustParseAddrPort("[2001:db8::1]:443")
		}
		pkts = append(pkts, transport.Packet{Addr: addr, Buf: buf, N: n})
	}
	g := newGatherer()
	for _, batch := range [][]transport.Packet{pkts, pkts[:1], pkts[:64], pkts[5:7], nil} {
		for rest := batch; ; {
			k, err := g.gather(rest)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, b := range g.bufs {
				got = append(got, b...)
			}
			want, wk, _ := encode(nil, rest[:k])
			if wk != k || !bytes.Equal(got, want) {
				t.Fatalf("gather of %d packets: %d packets, %d bytes; encode: %d, %d bytes", len(rest), k, len(got), wk, len(want))
			}
			if k < gatherMax {
				if _, ek, _ := encode(nil, rest); ek != k {
					t.Fatalf("gather took %d packets, encode %d", k, ek)
				}
			}
			rest = rest[k:]
			if len(rest) == 0 {
				break
			}
		}
	}
	if _, err := g.gather([]transport.Packet{{Buf: make([]byte, 4), N: 5}}); err == nil {
		t.Fatal("gather of N > len(Buf): want an error")
	}
}
