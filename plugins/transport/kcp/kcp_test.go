package kcp

import (
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

func TestPeerRestart(t *testing.T) {
	a, b := newNode(t, "", nil), newNode(t, "", nil)
	a.send(t, b.addr, []byte("one"))
	b.expect(t, "one")
	b.send(t, a.addr, []byte("two"))
	a.expect(t, "two")
	b.close()
	b2 := newNode(t, b.addr.String(), nil)
	b2.send(t, a.addr, []byte("three"))
	a.expect(t, "three")
	a.send(t, b2.addr, []byte("four"))
	b2.expect(t, "four")
	if st := a.stats(); st.Replaced != 1 {
		t.Errorf("stats %+v; want the old session replaced once", st)
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
