package pt

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// recvFrom waits for a datagram equal to want from src, re-sending it
// from a (to ap) every 100 ms: a datagram transport loses frames while a
// stream is re-established.
func recvFrom(t *testing.T, a, b transport.Transport, ap, src netip.AddrPort, want []byte, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	got := make(chan transport.Packet, 64)
	go func() {
		pkts := make([]transport.Packet, 8)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := b.ReadBatch(pkts)
			if err != nil {
				close(got)
				return
			}
			for _, p := range pkts[:n] {
				got <- transport.Packet{Addr: p.Addr, Buf: append([]byte(nil), p.Buf[:p.N]...), N: p.N}
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for {
		if err := a.WriteBatch([]transport.Packet{{Addr: ap, Buf: want, N: len(want)}}); err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		select {
		case p, ok := <-got:
			if !ok {
				t.Fatal("reader closed")
			}
			if p.Addr == src && bytes.Equal(p.Buf, want) {
				return time.Since(start)
			}
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no datagram from %v within %v", src, within)
		}
	}
}

// A peer that restarts (same address, same PT state) is reached again: the
// dialling side notices its stream died and dials anew.
func TestPeerRestartHeals(t *testing.T) {
	needPT(t)
	reg := &registry{m: map[netip.AddrPort]string{}}
	stateB := filepath.Join(t.TempDir(), "b")
	a := newPublished(t, reg, nil)
	defer a.Close()
	aAddr, err := a.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	b := newPublished(t, reg, map[string]string{"state_dir": stateB})
	bAddr, err := b.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	cert := b.Params()
	recvFrom(t, a, b, bAddr, aAddr, []byte("before"), 10*time.Second)
	b.Close()

	b2 := newPublished(t, reg, map[string]string{"state_dir": stateB})
	defer b2.Close()
	var got netip.AddrPort
	for range 50 { // the old PT server may hold the port for a moment
		if got, err = b2.Listen(bAddr); err == nil {
			break
		}
		b2.Close()
		b2 = newPublished(t, reg, map[string]string{"state_dir": stateB})
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restarted peer cannot listen on %v: %v", bAddr, err)
	}
	if got != bAddr || b2.Params() != cert {
		t.Fatalf("restarted peer at %v with %q; want %v with the same arguments %q (state kept)", got, b2.Params(), bAddr, cert)
	}
	took := recvFrom(t, a, b2, bAddr, aAddr, []byte("after"), 15*time.Second)
	t.Logf("healed %v after the peer came back", took.Round(time.Millisecond))
	// And the restarted side reaches back.
	recvFrom(t, b2, a, aAddr, bAddr, []byte("back"), 10*time.Second)
}

// The PT child is supervised: killed, it is restarted on the same
// address, and traffic flows again.
func TestPTChildRestarted(t *testing.T) {
	needPT(t)
	reg := &registry{m: map[netip.AddrPort]string{}}
	a, b := newPublished(t, reg, nil), newPublished(t, reg, nil)
	defer a.Close()
	defer b.Close()
	aAddr, err := a.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	bAddr, err := b.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	recvFrom(t, a, b, bAddr, aAddr, []byte("one"), 10*time.Second)
	b.server.mu.Lock()
	b.server.c.cmd.Process.Kill()
	b.server.mu.Unlock()
	recvFrom(t, a, b, bAddr, aAddr, []byte("two"), 20*time.Second)
	if b.Stats()["pt_restarts"] == 0 {
		t.Fatal("PT server killed but no restart counted")
	}
}

func TestOptions(t *testing.T) {
	needPT(t)
	for _, bad := range []map[string]string{
		{"nope": "1"},
		{"peers": "not-an-addr cert=x"},
		{"peers": "127.0.0.1:1 cert"},
		{"method": "a b"},
		{"binary": "/nonexistent/pt"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%v) succeeded; want an error", bad)
		} else if !strings.HasPrefix(err.Error(), "pt: ") {
			t.Errorf("New(%v): %v; want a pt: error", bad, err)
		}
	}
	tr, err := New(map[string]string{"peers": "127.0.0.1:1 cert=abc\\,d,iat-mode=0; [::1]:2 cert=x"})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := tr.(*Transport).argsFor(netip.MustParseAddrPort("127.0.0.1:1"))
	if !ok || a != `cert=abc\,d,iat-mode=0` {
		t.Fatalf("args %q %v", a, ok)
	}
	pairs, _ := splitArgs(a)
	if s := socksArgs(pairs); s != "cert=abc,d;iat-mode=0" {
		t.Fatalf("socks args %q", s)
	}
}

func TestParseLine(t *testing.T) {
	p := &proxy{bin: "x", method: "obfs4", server: true}
	var m method
	found := false
	for _, l := range []string{"VERSION 1", "SMETHOD obfs4 127.0.0.1:5 ARGS:cert=AB\\,C,iat-mode=0", "SMETHOD meek 127.0.0.1:6"} {
		if _, done := p.parseLine(l, &m, &found); done {
			t.Fatalf("%q ended the parse", l)
		}
	}
	res, done := p.parseLine("SMETHODS DONE", &m, &found)
	if !done || res.err != nil || res.m.addr != netip.MustParseAddrPort("127.0.0.1:5") || res.m.args != `cert=AB\,C,iat-mode=0` {
		t.Fatalf("got %+v %v", res, done)
	}
	for _, l := range []string{"VERSION 2", "ENV-ERROR no state", "SMETHOD-ERROR obfs4 bad"} {
		if res, done := p.parseLine(l, &m, &found); !done || res.err == nil {
			t.Errorf("%q: want an error", l)
		}
	}
}
