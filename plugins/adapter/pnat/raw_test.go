package pnat

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// rawExit is an Exit driven with hand-built packets.
type rawExit struct {
	t    *testing.T
	e    *Exit
	out  chan adapter.Packet
	done chan struct{}
}

func newRawExit(t *testing.T, opts map[string]string, setup func(*Exit)) *rawExit {
	opts, cfg := nodeConfig(t, opts)
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := a.(*Exit)
	if setup != nil {
		setup(e)
	}
	if err := e.Open(cfg); err != nil {
		t.Fatal(err)
	}
	r := &rawExit{t: t, e: e, out: make(chan adapter.Packet, 64), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		pkts := make([]adapter.Packet, 8)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for {
			n, err := e.ReadPackets(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				p.Buf = append([]byte(nil), p.Buf[:p.N]...)
				select {
				case r.out <- p:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { e.Close(); <-r.done })
	return r
}

func (r *rawExit) write(flow uint64, pkt []byte) {
	if _, err := r.e.WritePackets([]adapter.Packet{{Buf: pkt, N: len(pkt), Flow: flow}}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawExit) read() (adapter.Packet, ippkt.Info) {
	r.t.Helper()
	select {
	case p := <-r.out:
		in, err := ippkt.Parse(p.Buf)
		if err != nil {
			r.t.Fatalf("reply does not parse: %v", err)
		}
		if err := ippkt.Verify(p.Buf); err != nil {
			r.t.Fatalf("reply checksum: %v", err)
		}
		return p, in
	case <-time.After(2 * time.Second):
		r.t.Fatal("no reply within 2s")
	}
	return adapter.Packet{}, ippkt.Info{}
}

func echoRequest(src, dst netip.Addr, id, seq uint16, data string) []byte {
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq)}
	if src.Is6() {
		msg[0] = 128
	}
	p, _ := ippkt.AppendICMP(nil, src, dst, append(msg, data...))
	return p
}

// fakePing stands in for a kernel ping socket: it answers every echo and,
// like the kernel, replaces the identifier with its own.
type fakePing struct {
	replies chan []byte
	from    chan net.Addr
	once    sync.Once
	closed  chan struct{}
}

func newFakePing(string) (net.PacketConn, error) {
	return &fakePing{replies: make(chan []byte, 8), from: make(chan net.Addr, 8), closed: make(chan struct{})}, nil
}

func (f *fakePing) WriteTo(b []byte, addr net.Addr) (int, error) {
	m := append([]byte(nil), b...)
	if m[0] == 8 {
		m[0] = 0
	} else {
		m[0] = 129
	}
	binary.BigEndian.PutUint16(m[4:], 0xbeef)
	f.replies <- m
	f.from <- addr
	return len(b), nil
}

func (f *fakePing) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case m := <-f.replies:
		return copy(b, m), <-f.from, nil
	case <-f.closed:
		return 0, nil, net.ErrClosed
	}
}

func (f *fakePing) Close() error                       { f.once.Do(func() { close(f.closed) }); return nil }
func (f *fakePing) LocalAddr() net.Addr                { return &net.UDPAddr{} }
func (f *fakePing) SetDeadline(t time.Time) error      { return nil }
func (f *fakePing) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakePing) SetWriteDeadline(t time.Time) error { return nil }

func TestICMPEcho(t *testing.T) {
	r := newRawExit(t, map[string]string{OptPolicy: "accept *"}, func(e *Exit) { e.listenPing = newFakePing })
	for _, pair := range [][2]netip.Addr{
		{clientV4, netip.MustParseAddr("192.0.2.1")},
		{clientV6, netip.MustParseAddr("2001:db8::1")},
	} {
		for seq := uint16(1); seq <= 2; seq++ {
			r.write(5, echoRequest(pair[0], pair[1], 0x1234, seq, "abc"))
			p, in := r.read()
			body := p.Buf[in.PayloadOffset:]
			if p.Flow != 5 || in.Src != pair[1] || in.Dst != pair[0] || (body[0] != 0 && body[0] != 129) ||
				binary.BigEndian.Uint16(body[4:]) != 0x1234 || binary.BigEndian.Uint16(body[6:]) != seq || string(body[8:]) != "abc" {
				t.Fatalf("echo reply %+v % x", in, body)
			}
		}
	}
	if s := r.e.Stats(); s["icmp_echoes"] != 4 || s["flows_open"] != 2 {
		t.Fatalf("stats %v", s)
	}
}

// With real ping sockets, if the OS allows them (net.ipv4.ping_group_range).
func TestICMPEchoRealSocket(t *testing.T) {
	pc, err := listenPing("udp4")
	if err != nil {
		t.Skipf("unprivileged ICMP sockets unavailable here (%v); pnat counts and drops echoes", err)
	}
	pc.Close()
	r := newRawExit(t, map[string]string{OptPolicy: "accept 127.0.0.1", OptAllowLoopback: "true"}, nil)
	r.write(1, echoRequest(clientV4, netip.MustParseAddr("127.0.0.1"), 7, 1, "real"))
	_, in := r.read()
	if in.Src != netip.MustParseAddr("127.0.0.1") || in.ICMPType != 0 {
		t.Fatalf("reply %+v", in)
	}
}

func TestICMPUnavailable(t *testing.T) {
	r := newRawExit(t, map[string]string{OptPolicy: "accept *"}, func(e *Exit) {
		e.listenPing = func(string) (net.PacketConn, error) { return nil, net.UnknownNetworkError("ping") }
	})
	r.write(1, echoRequest(clientV4, netip.MustParseAddr("192.0.2.1"), 1, 1, ""))
	deadline := time.Now().Add(2 * time.Second)
	for r.e.Stats()["icmp_unavailable"] != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := r.e.Stats(); s["icmp_unavailable"] != 1 || s["flows_open"] != 0 {
		t.Fatalf("stats %v", s)
	}
}

// Refusals with hand-built packets: policy (ICMP for UDP and echo, RST
// for TCP), stray TCP segments, the UDP flow limit, junk.
func TestRefusals(t *testing.T) {
	srv := udpEchoServer(t)
	r := newRawExit(t, map[string]string{
		OptPolicy: "accept 127.0.0.0/8; reject *", OptAllowLoopback: "true", OptMaxFlows: "1",
	}, func(e *Exit) { e.listenPing = newFakePing })
	rejected := netip.MustParseAddr("192.0.2.1")

	r.write(1, echoRequest(clientV4, rejected, 1, 1, ""))
	if _, in := r.read(); in.ICMPType != 3 || in.Dst != clientV4 {
		t.Fatalf("echo to rejected: %+v", in)
	}
	r.write(1, udpPacket(clientV6, netip.MustParseAddr("2001:db8::1"), 1000, 53, "q"))
	if _, in := r.read(); in.ICMPType != 1 || in.Dst != clientV6 {
		t.Fatalf("udp to rejected: %+v", in)
	}
	syn := tcpPacket(clientV4, rejected, 1000, 80, 0x02)
	r.write(1, syn)
	if p, in := r.read(); in.Proto != ippkt.ProtoTCP || p.Buf[in.PayloadOffset+13]&0x04 == 0 {
		t.Fatalf("syn to rejected: %+v", in)
	}
	// A stray ACK for a connection the exit never saw: RST, no mapping.
	r.write(1, tcpPacket(clientV4, netip.MustParseAddr("127.0.0.1"), 1000, 80, 0x10))
	if p, in := r.read(); in.Proto != ippkt.ProtoTCP || p.Buf[in.PayloadOffset+13]&0x04 == 0 {
		t.Fatalf("stray ack: %+v", in)
	}
	if s := r.e.Stats(); s["mappings"] != 0 || s["rejected_policy"] != 3 {
		t.Fatalf("stats %v", s)
	}

	// The first UDP flow opens; the second is over the limit.
	dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	r.write(1, udpPacket(clientV4, dst.Addr(), 1000, dst.Port(), "one"))
	if p, in := r.read(); in.Proto != ippkt.ProtoUDP || string(p.Buf[in.PayloadOffset+8:]) != "one" || in.Dst != clientV4 || in.DstPort != 1000 {
		t.Fatalf("udp echo %+v", in)
	}
	r.write(1, udpPacket(clientV4, dst.Addr(), 1001, dst.Port(), "two"))
	if _, in := r.read(); in.ICMPType != 3 {
		t.Fatalf("over-limit udp: %+v", in)
	}
	if r.e.Stats()["rejected_limit"] != 1 {
		t.Fatalf("stats %v", r.e.Stats())
	}

	r.write(1, []byte{0x45, 0, 0})
	gre := udpPacket(clientV4, dst.Addr(), 1, 2, "")
	gre[9] = 47
	r.write(1, gre)
	if s := r.e.Stats(); s["drop_malformed"] != 1 || s["drop_unsupported"] != 1 {
		t.Fatalf("stats %v", s)
	}
}

func udpPacket(src, dst netip.Addr, sport, dport uint16, data string) []byte {
	u := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(data)))
	u = append(u, data...)
	binary.BigEndian.PutUint16(u[6:], ippkt.Checksum(u, ippkt.PseudoSum(src, dst, ippkt.ProtoUDP, len(u))))
	return wrapIP(src, dst, ippkt.ProtoUDP, u)
}

func tcpPacket(src, dst netip.Addr, sport, dport uint16, flags byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], 1)
	h[12], h[13] = 5<<4, flags
	binary.BigEndian.PutUint16(h[14:], 65535)
	binary.BigEndian.PutUint16(h[16:], ippkt.Checksum(h, ippkt.PseudoSum(src, dst, ippkt.ProtoTCP, len(h))))
	return wrapIP(src, dst, ippkt.ProtoTCP, h)
}

func wrapIP(src, dst netip.Addr, proto uint8, t []byte) []byte {
	if src.Is4() {
		h := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0}
		s, d := src.As4(), dst.As4()
		h = append(append(h, s[:]...), d[:]...)
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(t)))
		binary.BigEndian.PutUint16(h[10:], ippkt.Checksum(h, 0))
		return append(h, t...)
	}
	h := []byte{0x60, 0, 0, 0, byte(len(t) >> 8), byte(len(t)), proto, 64}
	s, d := src.As16(), dst.As16()
	h = append(append(h, s[:]...), d[:]...)
	return append(h, t...)
}
