package udp

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestCoalesce(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:1")
	b := netip.MustParseAddrPort("192.0.2.2:1")
	p := func(addr netip.AddrPort, n int) transport.Packet { return transport.Packet{Addr: addr, N: n} }
	for _, tc := range []struct {
		name               string
		pkts               []transport.Packet
		maxGroups, maxSegs int
		maxBytes           int
		want               []group
	}{
		{"one", []transport.Packet{p(a, 100)}, 64, 64, maxGSOBytes, []group{{0, 1, 100}}},
		{"run", []transport.Packet{p(a, 100), p(a, 100), p(a, 100)}, 64, 64, maxGSOBytes, []group{{0, 3, 100}}},
		{"short last ends the run",
			[]transport.Packet{p(a, 100), p(a, 100), p(a, 60), p(a, 100)}, 64, 64, maxGSOBytes,
			[]group{{0, 3, 100}, {3, 1, 100}}},
		{"longer one starts a new run",
			[]transport.Packet{p(a, 100), p(a, 120), p(a, 120)}, 64, 64, maxGSOBytes,
			[]group{{0, 1, 100}, {1, 2, 120}}},
		{"mixed destinations",
			[]transport.Packet{p(a, 100), p(a, 100), p(b, 100), p(b, 100), p(a, 100)}, 64, 64, maxGSOBytes,
			[]group{{0, 2, 100}, {2, 2, 100}, {4, 1, 100}}},
		{"segment cap", []transport.Packet{p(a, 10), p(a, 10), p(a, 10), p(a, 10), p(a, 10)}, 64, 2, maxGSOBytes,
			[]group{{0, 2, 10}, {2, 2, 10}, {4, 1, 10}}},
		{"byte cap", []transport.Packet{p(a, 10), p(a, 10), p(a, 10), p(a, 10)}, 64, 64, 25,
			[]group{{0, 2, 10}, {2, 2, 10}}},
		{"group cap", []transport.Packet{p(a, 10), p(b, 10), p(a, 10)}, 2, 64, maxGSOBytes,
			[]group{{0, 1, 10}, {1, 1, 10}}},
		{"empty datagrams never coalesce",
			[]transport.Packet{p(a, 0), p(a, 0), p(a, 5), p(a, 0)}, 64, 64, maxGSOBytes,
			[]group{{0, 1, 0}, {1, 1, 0}, {2, 1, 5}, {3, 1, 0}}},
		{"full frames", frames(a, 64), 64, 64, maxGSOBytes,
			[]group{{0, 46, transport.MaxDatagram}, {46, 18, transport.MaxDatagram}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := coalesce(nil, tc.pkts, tc.maxGroups, tc.maxSegs, tc.maxBytes)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("coalesce = %v, want %v", got, tc.want)
			}
		})
	}
}

func frames(a netip.AddrPort, n int) []transport.Packet {
	pkts := make([]transport.Packet, n)
	for i := range pkts {
		pkts[i] = transport.Packet{Addr: a, N: transport.MaxDatagram}
	}
	return pkts
}

func TestSegments(t *testing.T) {
	buf := []byte("aaabbbcc")
	for _, tc := range []struct {
		buf  []byte
		seg  int
		want []string
	}{
		{buf, 0, []string{"aaabbbcc"}},
		{buf, 3, []string{"aaa", "bbb", "cc"}}, // partial last segment
		{buf[:6], 3, []string{"aaa", "bbb"}},
		{buf, 8, []string{"aaabbbcc"}},
		{buf, 100, []string{"aaabbbcc"}},
		{nil, 0, []string{""}}, // an empty datagram is still a datagram
	} {
		var s segments
		s.reset(tc.buf, tc.seg)
		var got []string
		for d, ok := s.next(); ok; d, ok = s.next() {
			got = append(got, string(d))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("split %q at %d = %q, want %q", tc.buf, tc.seg, got, tc.want)
		}
	}
	var zero segments
	zero.done = true
	if _, ok := zero.next(); ok {
		t.Error("a used-up message yielded a datagram")
	}
}

// Over real loopback sockets, every combination of the offloads on both
// ends delivers every datagram of mixed runs (two destinations, short
// datagrams ending runs) intact and in order per destination, also when
// the reader takes fewer at a time than a coalesced message holds.
func TestOffloadRoundTrip(t *testing.T) {
	for _, fam := range []struct{ name, addr string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}} {
		for _, gso := range []string{"on", "off"} {
			for _, gro := range []string{"on", "off"} {
				t.Run(fmt.Sprintf("%s/gso=%s/gro=%s", fam.name, gso, gro), func(t *testing.T) {
					offloadRoundTrip(t, fam.addr, gso, gro)
				})
			}
		}
	}
}

func offloadRoundTrip(t *testing.T, addr, gso, gro string) {
	tx, _ := listen(t, addr, map[string]string{"gso": gso})
	rxOpts := map[string]string{"gro": gro}
	b, bAddr := listen(t, addr, rxOpts)
	c, cAddr := listen(t, addr, rxOpts)
	// 3 rounds: 50 full frames to b, 5 to c, 9 to b of which the last is short.
	var out []transport.Packet
	var wantB, wantC [][]byte
	for round := range 3 {
		for i := range 64 {
			dst, n := bAddr, transport.MaxDatagram
			switch {
			case i >= 50 && i < 55:
				dst = cAddr
			case i == 63:
				n = 700
			}
			buf := bytes.Repeat([]byte{byte(i)}, n)
			buf[1] = byte(round)
			out = append(out, transport.Packet{Addr: dst, Buf: buf, N: n})
			if dst == bAddr {
				wantB = append(wantB, buf)
			} else {
				wantC = append(wantC, buf)
			}
		}
	}
	for i := 0; i < len(out); i += transport.BatchSize {
		if err := tx.WriteBatch(out[i : i+transport.BatchSize]); err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
	}
	for _, r := range []struct {
		name string
		tr   transport.Transport
		want [][]byte
	}{{"b", b, wantB}, {"c", c, wantC}} {
		got := readAll(t, r.tr, len(r.want), 7)
		for i := range r.want {
			if !bytes.Equal(got[i], r.want[i]) {
				t.Fatalf("%s: datagram %d: %d bytes starting %x, want %d starting %x",
					r.name, i, len(got[i]), got[i][:2], len(r.want[i]), r.want[i][:2])
			}
		}
	}
	// Where the kernel offers GSO (and loopback takes it), runs went out
	// as fewer messages than datagrams.
	st := tx.(*udpTransport).Stats()
	if gso == "on" && st["udp_gso"] == 1 && (st["udp_gso_messages"] == 0 || st["udp_gso_messages"] >= uint64(len(out))) {
		t.Errorf("GSO on: %d messages for %d datagrams", st["udp_gso_messages"], len(out))
	}
	t.Logf("sender %v; receiver %v", st, b.(*udpTransport).Stats())
}

// readAll reads want datagrams, at most per at a time, in order.
func readAll(t *testing.T, tr transport.Transport, want, per int) [][]byte {
	t.Helper()
	var got [][]byte
	pkts := packets(per, transport.MaxDatagram)
	for len(got) < want {
		n, err := tr.ReadBatch(pkts)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d: %v", len(got), want, err)
		}
		for _, p := range pkts[:n] {
			got = append(got, bytes.Clone(p.Buf[:p.N]))
		}
	}
	return got
}

// With GRO a coalesced datagram too large for the caller's buffer is
// dropped and counted, and the rest still arrive.
func TestGRODropsTooLarge(t *testing.T) {
	tx, _ := listen(t, "127.0.0.1:0", nil)
	rx, rxAddr := listen(t, "127.0.0.1:0", nil)
	out := make([]transport.Packet, 10)
	for i := range out {
		n := 1000
		if i == 9 {
			n = 100
		}
		out[i] = transport.Packet{Addr: rxAddr, Buf: bytes.Repeat([]byte{byte(i)}, n), N: n}
	}
	if err := tx.WriteBatch(out); err != nil {
		t.Fatal(err)
	}
	pkts := packets(transport.BatchSize, 500)
	n, err := rx.ReadBatch(pkts)
	if err != nil || n != 1 || pkts[0].N != 100 || pkts[0].Buf[0] != 9 {
		t.Fatalf("ReadBatch = %d, %v; want only the 100-byte datagram", n, err)
	}
	if d := rx.(*udpTransport).Stats()["udp_rx_dropped_large"]; d != 9 {
		t.Fatalf("udp_rx_dropped_large = %d, want 9", d)
	}
}

func TestRegroup(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:1")
	b := netip.MustParseAddrPort("192.0.2.2:1")
	c := netip.MustParseAddrPort("[2001:db8::3]:1")
	mk := func(spec string) []transport.Packet {
		var pkts []transport.Packet
		for i, ch := range spec {
			addr := map[rune]netip.AddrPort{'a': a, 'b': b, 'c': c}[ch]
			pkts = append(pkts, transport.Packet{Addr: addr, N: i}) // N numbers them
		}
		return pkts
	}
	show := func(pkts []transport.Packet) string {
		s := ""
		for _, p := range pkts {
			s += fmt.Sprintf("%c%d ", map[netip.AddrPort]rune{a: 'a', b: 'b', c: 'c'}[p.Addr], p.N)
		}
		return s
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"aaa", "a0 a1 a2 "},
		{"aabb", "a0 a1 b2 b3 "},
		{"abab", "a0 a2 b1 b3 "},
		{"abcabcc", "a0 a3 b1 b4 c2 c5 c6 "},
		{"aabbaa", "a0 a1 a4 a5 b2 b3 "},
	} {
		in := mk(tc.in)
		got := regroup(make([]transport.Packet, 0, transport.BatchSize), in)
		if show(got) != tc.want {
			t.Errorf("regroup(%s) = %s, want %s", tc.in, show(got), tc.want)
		}
	}
}

// Interleaved destinations are regrouped on the wire: fewer messages than
// runs, and each receiver gets its datagrams in order.
func TestInterleavedDestinations(t *testing.T) {
	for _, batch := range []string{"64", "1"} {
		tx, _ := listen(t, "127.0.0.1:0", map[string]string{"batch": batch})
		b, bAddr := listen(t, "127.0.0.1:0", nil)
		c, cAddr := listen(t, "127.0.0.1:0", nil)
		var out []transport.Packet
		var wantB, wantC [][]byte
		for i := range 64 {
			buf := bytes.Repeat([]byte{byte(i)}, 1000)
			dst := bAddr
			if i%2 == 1 {
				dst = cAddr
				wantC = append(wantC, buf)
			} else {
				wantB = append(wantB, buf)
			}
			out = append(out, transport.Packet{Addr: dst, Buf: buf, N: len(buf)})
		}
		if err := tx.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			tr   transport.Transport
			want [][]byte
		}{{b, wantB}, {c, wantC}} {
			got := readAll(t, r.tr, len(r.want), 5)
			for i := range r.want {
				if !bytes.Equal(got[i], r.want[i]) {
					t.Fatalf("batch=%s: datagram %d out of order or damaged", batch, i)
				}
			}
		}
		if st := tx.(*udpTransport).Stats(); st["udp_gso"] == 1 && st["udp_gso_messages"] != 2 {
			t.Errorf("batch=%s: %d messages for 64 datagrams to 2 peers, want 2", batch, st["udp_gso_messages"])
		}
	}
}

// A segmented message the kernel refuses is resent datagram by datagram:
// the refused ones are counted, the rest arrive, and GSO stays on (only
// EIO turns it off).
func TestRefusedSegmentedMessage(t *testing.T) {
	a, aAddr := listen(t, "127.0.0.1:0", nil)
	b, bAddr := listen(t, "127.0.0.1:0", nil)
	bad := netip.MustParseAddrPort("[::1]:9") // IPv6 on an IPv4 socket
	var out []transport.Packet
	for i, dst := range []netip.AddrPort{bad, bad, bad, bAddr, bAddr} {
		out = append(out, transport.Packet{Addr: dst, Buf: bytes.Repeat([]byte{byte(i)}, 100), N: 100})
	}
	err := a.WriteBatch(out)
	if err == nil || !strings.Contains(err.Error(), "3 of 5") {
		t.Fatalf("WriteBatch = %v, want 3 of 5 datagrams not sent", err)
	}
	if got := readN(t, b, 2, aAddr); got[3] == nil || got[4] == nil {
		t.Fatalf("got datagrams %v, want 3 and 4", got)
	}
	st := a.(*udpTransport).Stats()
	if st["udp_gso"] == 1 && (st["udp_gso_retries"] != 1 || st["udp_gso_disabled"] != 0) {
		t.Fatalf("stats %v: want one retry and GSO still on", st)
	}
	if st["udp_tx_refused"] != 3 {
		t.Fatalf("udp_tx_refused = %d, want 3", st["udp_tx_refused"])
	}
}
