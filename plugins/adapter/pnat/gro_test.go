package pnat

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// tcpSegment is a TCP segment without options.
func tcpSegment(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(h[0:], src.Port())
	binary.BigEndian.PutUint16(h[2:], dst.Port())
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12], h[13] = 5<<4, flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	h = append(h, payload...)
	binary.BigEndian.PutUint16(h[16:], ippkt.Checksum(h, ippkt.PseudoSum(src.Addr(), dst.Addr(), ippkt.ProtoTCP, len(h))))
	return wrapIP(src.Addr(), dst.Addr(), ippkt.ProtoTCP, h)
}

// TestGROJoinsABatch: the consecutive segments of a flow in one
// WritePackets batch reach the stack's TCP as one segment, the server gets
// every byte in order, and packets with a bad checksum are dropped and
// counted (the stack trusts the link's check).
func TestGROJoinsABatch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(c, 10*1000))
		got <- b
	}()
	r := newRawExit(t, map[string]string{OptPolicy: "accept 127.0.0.0/8; reject *", OptAllowLoopback: "true"}, nil)
	cli := netip.AddrPortFrom(clientV4, 40000)
	srv := ln.Addr().(*net.TCPAddr).AddrPort()

	r.write(1, tcpSegment(cli, srv, 1000, 0, 0x02, nil))
	p, in := r.read()
	if f := p.Buf[in.PayloadOffset+13]; f&0x12 != 0x12 {
		t.Fatalf("no SYN-ACK: flags %#x", f)
	}
	ack := binary.BigEndian.Uint32(p.Buf[in.PayloadOffset+4:]) + 1
	r.write(1, tcpSegment(cli, srv, 1001, ack, 0x10, nil))

	segs := r.e.st.s.Stats().TCP.ValidSegmentsReceived.Value()
	want := bytes.Repeat([]byte("0123456789"), 1000)
	batch := make([]adapter.Packet, 10)
	for i := range batch {
		seg := tcpSegment(cli, srv, 1001+uint32(i*1000), ack, 0x10, want[i*1000:(i+1)*1000])
		batch[i] = adapter.Packet{Buf: seg, N: len(seg), Flow: 1}
	}
	// A corrupted copy of the first segment (payload bit flipped) in
	// the same batch must not reach the stack.
	bad := bytes.Clone(batch[0].Buf)
	bad[len(bad)-1] ^= 1
	batch = append(batch, adapter.Packet{Buf: bad, N: len(bad), Flow: 1})
	if _, err := r.e.WritePackets(batch); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("server got %d bytes, not the %d sent in order", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not get the data")
	}
	n := r.e.st.s.Stats().TCP.ValidSegmentsReceived.Value() - segs
	t.Logf("the stack took %d segments for 10 in one batch", n)
	if n > 2 {
		t.Errorf("the stack's TCP took %d segments for a batch of 10 consecutive ones; want them joined (1)", n)
	}

	badUDP := udpPacket(clientV4, srv.Addr(), 1000, srv.Port(), "x")
	badUDP[len(badUDP)-1] ^= 1
	r.write(1, badUDP)
	if s := r.e.Stats(); s["drop_checksum"] != 2 {
		t.Fatalf("drop_checksum = %d, want 2 (a TCP segment and a UDP datagram); stats %v", s["drop_checksum"], s)
	}
}
