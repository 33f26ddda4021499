package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen returns a bound transport that the test closes.
func listen(t testing.TB, addr string, opts map[string]string) (transport.Transport, netip.AddrPort) {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	bound, err := tr.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		tr.Close()
		if netip.MustParseAddrPort(addr).Addr().Is6() {
			t.Skipf("IPv6 unavailable: %v", err)
		}
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, bound
}

func packets(n, size int) []transport.Packet {
	pkts := make([]transport.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

// readN reads until want datagrams have arrived or the deadline passes,
// returning copies of their payloads keyed by first byte.
func readN(t *testing.T, tr transport.Transport, want int, from netip.AddrPort) map[byte][]byte {
	t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { tr.Close() }) // bound the wait
	defer timer.Stop()
	got := map[byte][]byte{}
	pkts := packets(transport.BatchSize, transport.MaxDatagram)
	for len(got) < want {
		n, err := tr.ReadBatch(pkts)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), want, err)
		}
		for _, p := range pkts[:n] {
			if p.Addr != from {
				t.Errorf("datagram from %v, want %v", p.Addr, from)
			}
			got[p.Buf[0]] = bytes.Clone(p.Buf[:p.N])
		}
	}
	return got
}

func payload(i int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, transport.MaxDatagram)
	b[1] = 0xA5
	return b[:transport.MaxDatagram-i] // vary the size too
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "[::1]:0", "[::1]:0"},
		{"dual-stack-to-ipv4", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, aAddr := listen(t, tc.a, nil)
			b, bAddr := listen(t, tc.b, nil)
			if aAddr.Addr().IsUnspecified() {
				aAddr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), aAddr.Port())
			}
			for _, dir := range []struct {
				name     string
				from, to transport.Transport
				src, dst netip.AddrPort
			}{{"a→b", a, b, aAddr, bAddr}, {"b→a", b, a, bAddr, aAddr}} {
				out := make([]transport.Packet, transport.BatchSize)
				for i := range out {
					p := payload(i)
					out[i] = transport.Packet{Addr: dir.dst, Buf: p, N: len(p)}
				}
				if err := dir.from.WriteBatch(out); err != nil {
					t.Fatalf("%s: WriteBatch: %v", dir.name, err)
				}
				got := readN(t, dir.to, len(out), dir.src)
				for i := range out {
					if !bytes.Equal(got[byte(i)], payload(i)) {
						t.Fatalf("%s: datagram %d: got %d bytes, want %d", dir.name, i, len(got[byte(i)]), len(payload(i)))
					}
				}
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	tr, _ := listen(t, "127.0.0.1:0", nil)
	done := make(chan error, 1)
	go func() {
		_, err := tr.ReadBatch(packets(4, transport.MaxDatagram))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let ReadBatch block (it is fine if it has not yet)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked 5s after Close")
	}
	p := []transport.Packet{{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Buf: []byte{1}, N: 1}}
	if err := tr.WriteBatch(p); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want ErrClosed", err)
	}
	if _, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Listen after Close: %v, want ErrClosed", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOversizedDropped(t *testing.T) {
	tr, addr := listen(t, "127.0.0.1:0", nil)
	raw, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, size := range []int{transport.MaxDatagram + 1, 9000, 10} {
		if _, err := raw.Write(make([]byte, size)); err != nil {
			t.Fatalf("write %d bytes: %v", size, err)
		}
	}
	from := raw.LocalAddr().(*net.UDPAddr).AddrPort()
	got := readN(t, tr, 1, from)
	if len(got) != 1 || len(got[0]) != 10 {
		t.Fatalf("got %d datagrams (sizes %v), want only the 10-byte one", len(got), sizes(got))
	}
}

func sizes(m map[byte][]byte) []int {
	var s []int
	for _, b := range m {
		s = append(s, len(b))
	}
	return s
}

// A destination the kernel refuses must not stop the rest of the batch.
func TestWriteBatchSkipsRefused(t *testing.T) {
	a, aAddr := listen(t, "127.0.0.1:0", nil)
	b, bAddr := listen(t, "127.0.0.1:0", nil)
	out := []transport.Packet{
		{Addr: bAddr, Buf: []byte{1}, N: 1},
		{Addr: netip.MustParseAddrPort("[::1]:9"), Buf: []byte{2}, N: 1}, // IPv6 on an IPv4 socket
		{Addr: bAddr, Buf: []byte{3}, N: 1},
	}
	err := a.WriteBatch(out)
	if err == nil {
		t.Fatal("WriteBatch with an IPv6 destination on an IPv4 socket: want an error")
	}
	got := readN(t, b, 2, aAddr)
	if got[1] == nil || got[3] == nil {
		t.Fatalf("got datagrams %v, want 1 and 3", got)
	}
}

func TestBatchOption(t *testing.T) {
	a, aAddr := listen(t, "127.0.0.1:0", map[string]string{"batch": "3"})
	// Without GRO, batch is also the most datagrams one ReadBatch returns.
	b, bAddr := listen(t, "127.0.0.1:0", map[string]string{"batch": "1", "gro": "off", "sndbuf": "65536", "rcvbuf": "65536"})
	out := make([]transport.Packet, 10)
	for i := range out {
		out[i] = transport.Packet{Addr: bAddr, Buf: []byte{byte(i)}, N: 1}
	}
	if err := a.WriteBatch(out); err != nil {
		t.Fatal(err)
	}
	n, err := b.ReadBatch(packets(8, 16))
	if err != nil || n != 1 {
		t.Fatalf("ReadBatch with batch=1: n=%d err=%v, want 1 datagram", n, err)
	}
	readN(t, b, 9, aAddr)
}

func TestOptionsRejected(t *testing.T) {
	for _, opts := range []map[string]string{
		{"batch": "0"},
		{"batch": "65"},
		{"batch": "many"},
		{"sndbuf": "-1"},
		{"rcvbuf": "4M"},
		{"mtu": "1500"},
		{"gso": "maybe"},
		{"gro": ""},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%v): want an error", opts)
		}
	}
}

func TestNotListening(t *testing.T) {
	tr, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Name() != "udp" {
		t.Errorf("Name() = %q", tr.Name())
	}
	if _, err := tr.ReadBatch(packets(1, 1)); err == nil {
		t.Error("ReadBatch before Listen: want an error")
	}
	if _, err := tr.Listen(netip.AddrPort{}); err == nil {
		t.Error("Listen on the zero address: want an error")
	}
}

func ExampleNew() {
	tr, err := New(map[string]string{"batch": "32"})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	addr, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	fmt.Println(tr.Name(), addr.Addr(), err)
	// Output: udp 127.0.0.1 <nil>
}
