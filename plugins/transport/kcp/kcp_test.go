package kcp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestOptions(t *testing.T) {
	good := map[string]string{"fec_data": "0", "fec_parity": "0", "nodelay": "0", "interval": "20",
		"window": "64", "mtu": "1452", "queue": "10", "max_delay_ms": "50", "idle_timeout_ms": "1000"}
	if _, err := New(good); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, bad := range []map[string]string{
		{"fec_data": "10", "fec_parity": "0"},
		{"mtu": "1400"}, // 1400−24−8 < 1408: cannot carry a link frame
		{"bogus": "1"},
		{"window": "-3"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%v) succeeded; want an error", bad)
		}
	}
}

// TestOverheadFitsPath checks on the wire that a link frame, and the
// largest datagram the transport accepts, leave as packets of at most
// 1452 bytes, parity included.
func TestOverheadFitsPath(t *testing.T) {
	for _, fec := range []bool{true, false} {
		t.Run(fmt.Sprintf("fec=%v", fec), func(t *testing.T) {
			opts := map[string]string{}
			if !fec {
				opts = map[string]string{"fec_data": "0", "fec_parity": "0"}
			}
			b := newNode(t, "", opts)
			r := newRelay(t, b.addr, 0, 0)
			a := newNode(t, "", opts)
			max := MaxPayload(PathMTU, fec)
			for i := range 30 { // enough for FEC groups to emit parity
				p := []byte(strings.Repeat(string(rune('a'+i%26)), max))
				a.send(t, r.addr(), p)
				b.expect(t, string(p))
			}
			frame := strings.Repeat("f", transport.MaxDatagram)
			a.send(t, r.addr(), []byte(frame))
			b.expect(t, frame)
			if got := r.maxSize.Load(); got != PathMTU {
				t.Errorf("largest packet on the wire %d bytes; want exactly %d", got, PathMTU)
			}
			want := transport.MaxDatagram + SegmentOverhead
			if fec {
				want += FECOverhead
			}
			if _, ok := r.sizes.Load(want); !ok {
				t.Errorf("no %d-byte packet for a link frame (overhead %d)", want, want-transport.MaxDatagram)
			}
			tooBig := make([]byte, max+1)
			if err := a.tr.WriteBatch([]transport.Packet{{Addr: r.addr(), Buf: tooBig, N: len(tooBig)}}); err == nil {
				t.Errorf("WriteBatch of %d bytes succeeded; want it refused", len(tooBig))
			}
		})
	}
}

func TestMessageBoundaries(t *testing.T) {
	a, b := newNode(t, "", nil), newNode(t, "", nil)
	sizes := []int{1, 2, 100, 1408, 3, 700, 1408, 1}
	batch := make([]transport.Packet, len(sizes))
	for i, n := range sizes {
		batch[i] = transport.Packet{Addr: b.addr, Buf: []byte(strings.Repeat(string(rune('A'+i)), n)), N: n}
	}
	if err := a.tr.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		select {
		case q := <-b.got:
			if q.N != sizes[i] || q.Buf[0] != byte('A'+i) {
				t.Fatalf("message %d: %d bytes of %q; want %d of %q", i, q.N, q.Buf[0], sizes[i], byte('A'+i))
			}
		case <-time.After(wait):
			t.Fatalf("message %d not received", i)
		}
	}
}

func TestSimultaneousOpen(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			a, b := newNode(t, "", nil), newNode(t, "", nil)
			done := make(chan struct{})
			go func() { defer close(done); a.send(t, b.addr, []byte("a0")) }()
			b.send(t, a.addr, []byte("b0"))
			<-done
			// The losing side's first datagrams may be lost with its
			// session; after one round both directions work.
			time.Sleep(50 * time.Millisecond)
			a.send(t, b.addr, []byte("a1"))
			b.send(t, a.addr, []byte("b1"))
			b.expect(t, "a1")
			a.expect(t, "b1")
		})
	}
}

// A peer that restarts (a new conv from the same address) gets a
// candidate session, whose messages go up at once; once the old session
// has been silent for replace_after_ms the candidate replaces it and
// writes reach the restarted peer.
func TestPeerRestart(t *testing.T) {
	a, b := newNode(t, "", map[string]string{"replace_after_ms": "300"}), newNode(t, "", nil)
	a.send(t, b.addr, []byte("one"))
	b.expect(t, "one")
	b.send(t, a.addr, []byte("two"))
	a.expect(t, "two")
	b.close()
	b2 := newNode(t, b.addr.String(), nil)
	b2.send(t, a.addr, []byte("three"))
	a.expect(t, "three")
	start := time.Now()
	for i := 0; ; i++ {
		msg := fmt.Sprintf("four %d", i)
		a.send(t, b2.addr, []byte(msg))
		if b2.tryExpect(msg, 100*time.Millisecond) {
			break
		}
		if time.Since(start) > wait {
			t.Fatalf("the restarted peer never heard us; stats %+v", a.stats())
		}
		if i%3 == 0 { // a restarted peer speaks: the core retries its handshake
			b2.send(t, a.addr, []byte("again"))
		}
	}
	t.Logf("restarted peer reached again %v after it spoke", time.Since(start).Round(time.Millisecond))
	if st := a.stats(); st.Replaced != 1 || st.Candidates != 1 {
		t.Errorf("stats %+v; want one candidate, which replaced the old session", st)
	}
}

// spoofedOpener is a KCP opener (PUSH, sn 0) under a new conv with a
// zero receive window, behind a FEC data header, as an off-path attacker
// who knows two peers' addresses can send.
func spoofedOpener(conv uint32) []byte {
	seg := make([]byte, SegmentOverhead)
	binary.LittleEndian.PutUint32(seg, conv)
	seg[4] = cmdPush // frg 0, wnd 0 (bytes 6–7), ts 0, sn 0, una 0, len 0
	fec := make([]byte, fecHeader)
	binary.LittleEndian.PutUint32(fec, 7)
	binary.LittleEndian.PutUint16(fec[4:], fecTypeData)
	binary.LittleEndian.PutUint16(fec[6:], uint16(len(seg)+2))
	return append(fec, seg...)
}

// D41's attack: one spoofed opener from a live peer's address used to
// replace the session, whose writes then stalled on the zero window while
// the real peer's packets (old conv) were dropped; the link was down
// until both sessions expired. Now the opener only starts a candidate,
// and the live peer, which keeps speaking, keeps its session.
func TestSpoofedOpenerKeepsLink(t *testing.T) {
	a, b := newNode(t, "", map[string]string{"replace_after_ms": "300"}), newNode(t, "", nil)
	a.send(t, b.addr, []byte("hello"))
	b.expect(t, "hello")
	b.send(t, a.addr, []byte("hi"))
	a.expect(t, "hi")
	for i := range 3 { // three openers, each a new conv
		a.tr.(*kcpTransport).route(b.addr, spoofedOpener(0x5eed0000+uint32(i)))
	}
	deadline := time.Now().Add(1500 * time.Millisecond) // five times replace_after_ms
	for i := 0; time.Now().Before(deadline); i++ {
		msg := fmt.Sprintf("m%d", i)
		a.send(t, b.addr, []byte(msg))
		b.expect(t, msg)
		b.send(t, a.addr, []byte(msg))
		a.expect(t, msg)
		time.Sleep(100 * time.Millisecond)
	}
	if st := a.stats(); st.Replaced != 0 || st.Candidates != 3 {
		t.Errorf("stats %+v; want three candidates and no replacement", st)
	}
}

// TestDeadPeerBounded checks that writing to a peer that never answers
// neither blocks WriteBatch nor queues without bound.
func TestDeadPeerBounded(t *testing.T) {
	a := newNode(t, "", map[string]string{"queue": "64", "max_delay_ms": "50", "window": "32", "idle_timeout_ms": "300"})
	dead := newNode(t, "", nil)
	to := dead.addr
	dead.close() // nothing listens there any more
	frame := make([]byte, transport.MaxDatagram)
	batch := make([]transport.Packet, transport.BatchSize)
	for i := range batch {
		batch[i] = transport.Packet{Addr: to, Buf: frame, N: len(frame)}
	}
	start := time.Now()
	for range 20 {
		if err := a.tr.WriteBatch(batch); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("20 WriteBatch calls to a dead peer took %v; want them not to wait for the network", d)
	}
	deadline := time.Now().Add(wait)
	for a.stats().Expired == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := a.stats()
	if st.SendDrops < 20*transport.BatchSize-64-32 {
		t.Errorf("stats %+v: want most of %d datagrams dropped at the sender", st, 20*transport.BatchSize)
	}
	if st.Expired != 1 {
		t.Errorf("stats %+v: want the silent session expired", st)
	}
}
