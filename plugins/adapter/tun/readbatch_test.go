package tun

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// fakeDev is a wgtun.Device whose reads return scripted batches, as
// wireguard's tun returns the segments of one super-packet.
type fakeDev struct {
	mu     sync.Mutex
	reads  [][][]byte // what each Read returns
	closed chan struct{}
	more   chan struct{}
	calls  int
}

func newFakeDev() *fakeDev {
	return &fakeDev{closed: make(chan struct{}), more: make(chan struct{}, 1)}
}

func (f *fakeDev) push(read [][]byte) {
	f.mu.Lock()
	f.reads = append(f.reads, read)
	f.mu.Unlock()
	select {
	case f.more <- struct{}{}:
	default:
	}
}

func (f *fakeDev) ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reads) > 0
}

func (f *fakeDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		f.mu.Lock()
		if len(f.reads) > 0 {
			r := f.reads[0]
			f.reads = f.reads[1:]
			f.calls++
			f.mu.Unlock()
			if len(r) > len(bufs) {
				return 0, errors.New("fakeDev: more segments than buffers")
			}
			for i, p := range r {
				sizes[i] = copy(bufs[i][offset:], p)
			}
			return len(r), nil
		}
		f.mu.Unlock()
		select {
		case <-f.more:
		case <-f.closed:
			return 0, os.ErrClosed
		}
	}
}

func (f *fakeDev) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (f *fakeDev) File() *os.File                               { return nil }
func (f *fakeDev) MTU() (int, error)                            { return adapter.InnerMTU, nil }
func (f *fakeDev) Name() (string, error)                        { return "fake0", nil }
func (f *fakeDev) Events() <-chan wgtun.Event                   { return nil }
func (f *fakeDev) Close() error                                 { close(f.closed); return nil }
func (f *fakeDev) BatchSize() int                               { return 128 }

// numbered returns n packets, each carrying its sequence number from
// *seq on.
func numbered(seq *uint32, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := make([]byte, 100)
		p[0] = 0x45
		binary.BigEndian.PutUint32(p[4:], *seq)
		*seq++
		out[i] = p
	}
	return out
}

// TestReadPacketsTopUp: after a read that split a super-packet,
// ReadPackets adds what is already queued until the caller's batch is
// full; every packet comes out once, in order; a single-packet read
// (an ACK, say) is not topped up.
func TestReadPacketsTopUp(t *testing.T) {
	dev := newFakeDev()
	d := &Device{opts: options{mtu: adapter.InnerMTU}, closed: make(chan struct{}), dev: dev, opened: true}
	d.initRead()
	d.rready = dev.ready

	var seq uint32
	// Three super-packets queued: 40 + 40 + 40 segments; a batch of 64.
	for range 3 {
		dev.push(numbered(&seq, 40))
	}
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	var want uint32
	check := func(n int) {
		t.Helper()
		for _, p := range pkts[:n] {
			if got := binary.BigEndian.Uint32(p.Buf[4:]); got != want || p.N != 100 {
				t.Fatalf("packet %d: got number %d (%d bytes)", want, got, p.N)
			}
			want++
		}
	}
	var sizes []int
	for want < 120 {
		n, err := d.ReadPackets(pkts)
		if err != nil {
			t.Fatal(err)
		}
		check(n)
		sizes = append(sizes, n)
	}
	// 64 (40 + 24 of the second), 56 (16 left + the third's 40).
	if len(sizes) != 2 || sizes[0] != 64 || sizes[1] != 56 {
		t.Errorf("batches %v, want [64 56]", sizes)
	}
	if got := d.stats.topUps.Load(); got != 2 {
		t.Errorf("%d reads added to a batch, want 2", got)
	}

	// A one-packet read is handed on alone even if more is queued: an
	// ACK goes at once, and a poll per ACK would be wasted.
	dev.push(numbered(&seq, 1))
	dev.push(numbered(&seq, 1))
	n, err := d.ReadPackets(pkts)
	if err != nil || n != 1 {
		t.Fatalf("after a one-packet read: %d packets, %v; want 1", n, err)
	}
	check(n)
	n, _ = d.ReadPackets(pkts)
	check(n)

	// Many small leftovers: the waiting buffers move to the front so a
	// read always has a full device batch of room.
	for range 20 {
		dev.push(numbered(&seq, 50))
	}
	for want < seq {
		n, err := d.ReadPackets(pkts[:7])
		if err != nil {
			t.Fatal(err)
		}
		check(n)
	}
	if d.stats.dropRead.Load() != 0 || d.stats.dropTooBig.Load() != 0 {
		t.Errorf("drops: %v", d.Stats())
	}

	close(d.closed)
	dev.Close()
	if _, err := d.ReadPackets(pkts); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestReadPacketsTooBig: a packet larger than the caller's buffer is
// dropped and counted, the rest still arrive.
func TestReadPacketsTooBig(t *testing.T) {
	dev := newFakeDev()
	d := &Device{opts: options{mtu: adapter.InnerMTU}, closed: make(chan struct{}), dev: dev, opened: true}
	d.initRead()
	big := make([]byte, 1000)
	big[0] = 0x45
	dev.push([][]byte{big, big[:50]})
	pkts := []adapter.Packet{{Buf: make([]byte, 100)}, {Buf: make([]byte, 100)}}
	n, err := d.ReadPackets(pkts)
	if err != nil || n != 1 || pkts[0].N != 50 {
		t.Fatalf("got %d packets (%d bytes), %v; want the 50-byte one", n, pkts[0].N, err)
	}
	if got := d.Stats()["drop_too_big"]; got != 1 {
		t.Errorf("drop_too_big = %d, want 1", got)
	}
	dev.Close()
}
