package transportplugin

import (
	"net/netip"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

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
