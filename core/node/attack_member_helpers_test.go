package node

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Helpers for the admission and exhaustion attack tests: an attacker is a
// raw transport on the test network that reads and writes frames itself.

// rawPeer is an outsider's socket: it records every datagram it receives.
type rawPeer struct {
	t    testing.TB
	tr   transport.Transport
	addr netip.AddrPort

	mu      sync.Mutex
	frames  [][]byte // kept unless countOnly
	from    []netip.AddrPort
	total   int
	byType  [256]int
	wake    chan struct{}
	discard bool
}

func newRawPeer(tn *testNet, addr netip.AddrPort) *rawPeer {
	r := &rawPeer{t: tn.t, tr: tn.rawTransport(addr), addr: addr, wake: make(chan struct{}, 1)}
	go r.pump()
	return r
}

// newCountingPeer is a rawPeer that counts what it receives and keeps
// nothing (await does not work on it), for long floods.
func newCountingPeer(tn *testNet, addr netip.AddrPort) *rawPeer {
	r := &rawPeer{t: tn.t, tr: tn.rawTransport(addr), addr: addr, wake: make(chan struct{}, 1), discard: true}
	go r.pump()
	return r
}

func (r *rawPeer) pump() {
	batch := transport.BatchSize
	if r.discard {
		batch = 2 // thousands of these run at once: keep their buffers small
	}
	pkts := make([]transport.Packet, batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, link.FrameSize+64)
	}
	for {
		for i := range pkts {
			pkts[i].Buf = pkts[i].Buf[:cap(pkts[i].Buf)]
		}
		k, err := r.tr.ReadBatch(pkts)
		if err != nil {
			return
		}
		r.mu.Lock()
		for i := 0; i < k; i++ {
			r.total++
			if pkts[i].N == link.FrameSize {
				r.byType[pkts[i].Buf[0]]++
			}
			if !r.discard {
				r.frames = append(r.frames, append([]byte(nil), pkts[i].Buf[:pkts[i].N]...))
				r.from = append(r.from, pkts[i].Addr)
			}
		}
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// count is how many datagrams arrived so far.
func (r *rawPeer) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// countType is how many frames of one type arrived so far.
func (r *rawPeer) countType(typ byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byType[typ]
}

// await returns the first frame of type typ from `from` (any sender if
// invalid) received at or after index start, waiting up to limit.
func (r *rawPeer) await(typ byte, from netip.AddrPort, start int, limit time.Duration) ([]byte, bool) {
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		for i := start; i < len(r.frames); i++ {
			f := r.frames[i]
			if len(f) == link.FrameSize && f[0] == typ && (!from.IsValid() || r.from[i] == from) {
				r.mu.Unlock()
				return f, true
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, false
		}
		select {
		case <-r.wake:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// send writes frames to dst, in batches small enough for the in-memory
// network's receive queue.
func (r *rawPeer) send(dst netip.AddrPort, frames ...[]byte) {
	r.t.Helper()
	pkts := make([]transport.Packet, 0, transport.BatchSize)
	flush := func() {
		if len(pkts) == 0 {
			return
		}
		if err := r.tr.WriteBatch(pkts); err != nil {
			r.t.Fatal(err)
		}
		pkts = pkts[:0]
	}
	for _, f := range frames {
		pkts = append(pkts, transport.Packet{Addr: dst, Buf: f, N: len(f)})
		if len(pkts) == cap(pkts) {
			flush()
		}
	}
	flush()
}

// sendPaced sends count copies of what frame(i) returns to dst, waiting
// whenever the victim has more than 1,000 of them unread, so that none is
// lost to the in-memory network's queue limit and all are processed. It
// returns when the victim has read them all.
func (r *rawPeer) sendPaced(victim *Node, dst netip.AddrPort, count int, frame func(i int) []byte) {
	r.t.Helper()
	start := victim.Stat(EventFramesIn)
	for i := 0; i < count; {
		// Frames from others reach the victim too, so frames_in is only a
		// lower bound on ours having been read: good enough for pacing.
		for int(victim.Stat(EventFramesIn)-start) < i-1000 {
			time.Sleep(time.Millisecond)
		}
		end := min(i+transport.BatchSize, count)
		batch := make([][]byte, 0, end-i)
		for ; i < end; i++ {
			batch = append(batch, frame(i))
		}
		r.send(dst, batch...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for int(victim.Stat(EventFramesIn)-start) < count {
		if time.Now().After(deadline) {
			r.t.Fatalf("victim read %d of the %d frames sent in 30 s", victim.Stat(EventFramesIn)-start, count)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// proofFrame builds a type-5 frame by hand (PROTOCOL.md §5 layout), as an
// attacker who moves a signature onto another descriptor would.
func proofFrame(nonce [32]byte, desc, sig []byte) []byte {
	f := make([]byte, link.FrameSize)
	f[0] = link.TypeProof
	b := f[link.HeaderSize:link.HeaderSize]
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(desc)))
	b = append(b, desc...)
	_ = append(b, sig...)
	return f
}

// signedDescriptor signs a descriptor for id listing addrs on transport
// "mem", with fresh keys unless linkKey is given.
func signedDescriptor(t testing.TB, id *identity.Identity, published, expires time.Time, linkKey *[32]byte, addrs ...netip.AddrPort) []byte {
	t.Helper()
	d := &descriptor.Descriptor{Published: published, Expires: expires}
	rand.Read(d.LinkKey[:])
	rand.Read(d.OnionKey[:])
	if linkKey != nil {
		d.LinkKey = *linkKey
	}
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, descriptor.Addr{Transport: "mem", AddrPort: a})
	}
	b, err := d.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newIdentity(t testing.TB) *identity.Identity {
	t.Helper()
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sameIPOtherPort is addr's IP on another port: where a process sharing a
// mimic's host (or its NAT) sends from.
func sameIPOtherPort(addr netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(addr.Addr(), addr.Port()+99)
}

// atomicCounter counts calls from any goroutine.
type atomicCounter struct{ v atomic.Uint64 }

func (c *atomicCounter) add()         { c.v.Add(1) }
func (c *atomicCounter) load() uint64 { return c.v.Load() }

func cryptoRandRead(p []byte) (int, error) { return rand.Read(p) }
