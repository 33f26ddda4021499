package dtls

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
)

// FuzzRecord checks the record-layer parser the receive loop routes by:
// whatever the bytes, it never reads past the datagram, and a ClientHello
// random it reports is the bytes at the random's place.
func FuzzRecord(f *testing.F) {
	hello := make([]byte, recordHeaderLen+handshakeHeaderLen+2+32)
	hello[0], hello[12] = contentHandshake, byte(handshakeHeaderLen+2+32)
	hello[recordHeaderLen] = handshakeClientHello
	f.Add(hello)
	f.Add([]byte{contentApplicationData, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, 0, 2, 'h', 'i'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := parseRecord(b)
		if !ok {
			if _, hello := clientHelloRandom(b); hello {
				t.Fatal("a ClientHello random from a datagram without a whole record")
			}
			return
		}
		if r.length < 0 || recordHeaderLen+r.length > len(b) {
			t.Fatalf("record of %d bytes claimed in a %d-byte datagram", r.length, len(b))
		}
		if r.seq >= 1<<48 {
			t.Fatalf("sequence number %d has more than 48 bits", r.seq)
		}
		if random, hello := clientHelloRandom(b); hello {
			at := recordHeaderLen + handshakeHeaderLen + 2
			if r.contentType != contentHandshake || r.epoch != 0 || !bytes.Equal(random[:], b[at:at+32]) {
				t.Fatalf("ClientHello random %x does not match the datagram", random)
			}
		}
	})
}

// FuzzRoute feeds arbitrary datagrams to a listening transport's router,
// from the address of an established peer and from strangers, and checks
// that nothing breaks: the established session still carries data both
// ways, and strangers' handshakes stay within max_handshakes.
func FuzzRoute(f *testing.F) {
	hello := make([]byte, recordHeaderLen+handshakeHeaderLen+2+32)
	hello[0], hello[12] = contentHandshake, byte(handshakeHeaderLen+2+32)
	hello[recordHeaderLen] = handshakeClientHello
	f.Add(hello, uint8(0))
	f.Add(hello, uint8(3))
	f.Add([]byte{contentApplicationData, 0xfe, 0xfd, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 2, 'h', 'i'}, uint8(1))
	f.Add([]byte{21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 2, 40}, uint8(0)) // a fatal alert
	a := newPeer(f, "", nil)
	b := newPeer(f, "", nil)
	a.send(f, b.addr, []byte("hello"))
	b.expect(f, "hello")
	bt := b.tr.(*dtlsTransport)
	n := 0
	f.Fuzz(func(t *testing.T, dgram []byte, who uint8) {
		from := a.addr // the established peer (a spoofed copy of its address)
		if who%4 != 0 {
			from = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 40000+uint16(who%4))
		}
		bt.route(from, bytes.Clone(dgram))
		bt.mu.Lock()
		running := bt.handshakes
		bt.mu.Unlock()
		if running > bt.opts.maxHandshakes {
			t.Fatalf("%d server handshakes running; at most %d", running, bt.opts.maxHandshakes)
		}
		n++
		msg := fmt.Sprintf("still up %d", n)
		a.send(t, b.addr, []byte(msg))
		b.expect(t, msg)
		b.send(t, a.addr, []byte(msg))
		a.expect(t, msg)
	})
}
