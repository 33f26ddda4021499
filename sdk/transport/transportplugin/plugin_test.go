package transportplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func TestConformanceInProcessUDP(t *testing.T) {
	transporttest.Run(t, func(*testing.T) transport.Transport { t, _ := newUDP(nil); return t })
}

func TestConformanceOutOfProcess(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) transport.Transport { return launch(t) })
}

// pair is an out-of-process transport and an in-process peer, both
// listening on loopback, with background readers.
type pair struct {
	t           *testing.T
	oop, peer   transport.Transport
	oopAddr     netip.AddrPort
	peerAddr    netip.AddrPort
	oopR, peerR chan transport.Packet
}

func newPair(t *testing.T) *pair {
	p := &pair{t: t, oop: launch(t), oopR: make(chan transport.Packet, 1024), peerR: make(chan transport.Packet, 1024)}
	p.peer, _ = newUDP(nil)
	t.Cleanup(func() { p.oop.Close(); p.peer.Close() })
	var err error
	if p.oopAddr, err = p.oop.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if p.peerAddr, err = p.peer.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	go drain(p.oop, p.oopR)
	go drain(p.peer, p.peerR)
	return p
}

func drain(tr transport.Transport, out chan<- transport.Packet) {
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, transport.MaxDatagram)
	}
	for {
		n, err := tr.ReadBatch(pkts)
		if err != nil {
			return
		}
		for _, p := range pkts[:n] {
			out <- transport.Packet{Addr: p.Addr, Buf: append([]byte(nil), p.Buf[:p.N]...), N: p.N}
		}
	}
}

func batch(to netip.AddrPort, tag byte) []transport.Packet {
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		b := make([]byte, transport.MaxDatagram)
		for j := range b {
			b[j] = tag ^ byte(i) ^ byte(j)
		}
		pkts[i] = transport.Packet{Addr: to, Buf: b, N: len(b)}
	}
	return pkts
}

// roundTrip sends a full batch each way and checks it arrives intact.
// Writes are retried while the plugin restarts (ErrUnavailable).
func (p *pair) roundTrip(tag byte) {
	p.t.Helper()
	p.send(p.peer, p.oopAddr, p.oopR, p.peerAddr, tag)
	p.send(p.oop, p.peerAddr, p.peerR, p.oopAddr, tag+1)
}

func (p *pair) send(from transport.Transport, to netip.AddrPort, rx chan transport.Packet, src netip.AddrPort, tag byte) {
	p.t.Helper()
	want := batch(to, tag)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := from.WriteBatch(want)
		if err == nil {
			break
		}
		if !errors.Is(err, transport.ErrUnavailable) || time.Now().After(deadline) {
			p.t.Fatalf("WriteBatch: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[int]bool{}
	timeout := time.After(5 * time.Second)
	for len(seen) < len(want) {
		select {
		case got := <-rx:
			if got.Addr != src {
				p.t.Fatalf("source %v; want %v", got.Addr, src)
			}
			i := int(got.Buf[0] ^ tag)
			if i >= len(want) || string(got.Buf) != string(want[i].Buf) {
				p.t.Fatalf("datagram corrupted (tag %d)", tag)
			}
			seen[i] = true
		case <-timeout:
			p.t.Fatalf("got %d of %d datagrams (tag %d)", len(seen), len(want), tag)
		}
	}
}

func TestBatchThroughChild(t *testing.T) {
	p := newPair(t)
	if got := p.oop.Name(); got != "testudp" {
		t.Errorf("Name() = %q; want the plugin's name testudp", got)
	}
	p.roundTrip(1)
	st := p.oop.(pluginkit.Reporter).PluginStats()
	if st.Kind != Kind || !st.Running || st.PID == 0 || st.Counters["plugin_packets_out"] != transport.BatchSize {
		t.Errorf("PluginStats = %+v", st)
	}
}

func TestRestartAfterSIGKILL(t *testing.T) {
	p := newPair(t)
	p.roundTrip(1)
	r := p.oop.(pluginkit.Reporter)
	pid := r.PluginStats().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil { // our own child, by PID
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for r.Restarts() < 1 || !r.PluginStats().Running {
		if time.Now().After(deadline) {
			t.Fatalf("no restart after SIGKILL: %+v", r.PluginStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := r.PluginStats()
	if st.PID == pid || st.Restarts != 1 {
		t.Fatalf("after restart: %+v (old pid %d)", st, pid)
	}
	// Same address, so the peer reaches the new child without being told.
	p.roundTrip(10)
	if got := r.Restarts(); got != 1 {
		t.Errorf("Restarts() = %d; want 1", got)
	}
}

func TestChecksum(t *testing.T) {
	l := helper(t, "udp")
	f, err := os.Open(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, f)
	f.Close()
	good := hex.EncodeToString(h.Sum(nil))

	l.Checksum = strings.Repeat("ab", 32)
	_, err = Launch(l, nil)
	if !errors.Is(err, pluginkit.ErrChecksum) || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), l.Checksum) {
		t.Fatalf("Launch with a wrong checksum: %v; want ErrChecksum naming both sums", err)
	}
	t.Log(err)

	l.Checksum = good
	tr, err := Launch(l, nil)
	if err != nil {
		t.Fatalf("Launch with the right checksum: %v", err)
	}
	tr.Close()
}

func TestVersionMismatch(t *testing.T) {
	_, err := Launch(helper(t, "v2"), nil)
	if !errors.Is(err, pluginkit.ErrVersionMismatch) || !strings.Contains(err.Error(), "protocol version 2") || !strings.Contains(err.Error(), "speaks [1]") {
		t.Fatalf("Launch of a v2-only plugin: %v; want ErrVersionMismatch naming 2 and [1]", err)
	}
	t.Log(err)
}
