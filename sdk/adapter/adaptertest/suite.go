package adaptertest

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// waitTimeout bounds every wait for a packet or a return in the suite.
const waitTimeout = 5 * time.Second

// Subject is one adapter under test.
type Subject struct {
	// Adapter is fresh and not yet opened; the suite opens and closes it.
	Adapter adapter.Adapter
	// Config is what Open gets; a zero MTU means adapter.InnerMTU.
	Config adapter.Config
	// Provoke, called after Open, makes the adapter produce at least one
	// packet for ReadPackets and returns the Flow that packet will carry.
	// An exit can be written a packet its policy refuses (the refusal
	// comes back on the same Flow); a client, a local application's
	// connection. Nil skips the checks that need a packet to read.
	Provoke func(t *testing.T, a adapter.Adapter) (flow uint64)
}

// Run checks that the adapters newSubject makes honour the contract in
// package adapter: Open once, batches, both buffer-ownership rules, no
// truncation, bad packets consumed not fatal, Close unblocking a read and
// making every later call return adapter.ErrClosed, concurrent writers,
// and no goroutine left behind. newSubject must return a fresh subject
// each time.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	s := suite{newSubject: newSubject}
	t.Run("Identity", s.identity)
	t.Run("OpenOnce", s.openOnce)
	t.Run("ReadBack", s.readBack)
	t.Run("TooSmallBufferNotTruncated", s.smallBuffer)
	t.Run("WriteFullBatch", s.fullBatch)
	t.Run("WriteConsumesBadPackets", s.badPackets)
	t.Run("WriteBufferOwnership", s.writeOwnership)
	t.Run("CloseUnblocksRead", s.closeUnblocks)
	t.Run("ConcurrentWrite", s.concurrentWrite)
}

type suite struct {
	newSubject func(t *testing.T) Subject
}

// open makes and opens a subject, closes it at the end of the test and
// then checks for goroutine leaks (cleanups run last-in first-out).
func (s suite) open(t *testing.T) Subject {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	sub := s.newSubject(t)
	if sub.Config.MTU == 0 {
		sub.Config.MTU = adapter.InnerMTU
	}
	t.Cleanup(func() { sub.Adapter.Close() })
	if err := sub.Adapter.Open(sub.Config); err != nil {
		t.Fatalf("Open(%+v): %v", sub.Config, err)
	}
	return sub
}

// Probe is a packet that exercises an adapter without depending on its
// world: a UDP datagram from the default client address to the
// documentation range, which no default exit policy accepts.
func Probe() []byte {
	b, err := ippkt.AppendUDP(nil, netip.AddrPortFrom(adapter.ClientPrefix4.Addr(), 40000),
		netip.MustParseAddrPort("192.0.2.1:9"), []byte("adaptertest probe"))
	if err != nil {
		panic(err)
	}
	return b
}

func (s suite) identity(t *testing.T) {
	sub := s.open(t)
	if sub.Adapter.Name() == "" {
		t.Error("Name() is empty")
	}
	if r := sub.Adapter.Role(); r != adapter.RoleClient && r != adapter.RoleExit {
		t.Errorf("Role() = %q; want %q or %q", r, adapter.RoleClient, adapter.RoleExit)
	}
}

func (s suite) openOnce(t *testing.T) {
	sub := s.open(t)
	if err := sub.Adapter.Open(sub.Config); err == nil {
		t.Error("a second Open succeeded; want an error")
	}
}

// reader runs ReadPackets with buffers of bufN bytes until Close, and
// hands out copies, scribbling over the buffers after each call: the
// adapter must not depend on them once ReadPackets returned.
func reader(t *testing.T, a adapter.Adapter, bufN int) (<-chan adapter.Packet, <-chan error) {
	got, done := make(chan adapter.Packet, 4*adapter.BatchSize), make(chan error, 1)
	go func() {
		pkts := make([]adapter.Packet, adapter.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, bufN)
		}
		for {
			n, err := a.ReadPackets(pkts)
			if err != nil {
				done <- err
				return
			}
			if n < 1 || n > len(pkts) {
				t.Errorf("ReadPackets returned %d packets for %d buffers without an error; want 1..%d", n, len(pkts), len(pkts))
			}
			for _, p := range pkts[:min(max(n, 0), len(pkts))] {
				if p.N < 0 || p.N > len(p.Buf) {
					t.Errorf("ReadPackets set N = %d for a %d-byte buffer", p.N, len(p.Buf))
					continue
				}
				select {
				case got <- adapter.Packet{Buf: append([]byte(nil), p.Buf[:p.N]...), N: p.N, Flow: p.Flow}:
				default: // the test stopped looking
				}
				for i := range p.Buf {
					p.Buf[i] = 0xEE
				}
			}
		}
	}()
	return got, done
}

// expectOn waits for a packet on flow and checks it is one whole IP
// packet.
func expectOn(t *testing.T, got <-chan adapter.Packet, flow uint64) adapter.Packet {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case p := <-got:
			if p.Flow != flow {
				continue // e.g. a client's own chatter on another group
			}
			if in, err := ippkt.Parse(p.Buf); err != nil || in.Length != p.N {
				t.Fatalf("read a packet that is not one whole IP packet (%v; %d bytes, IP length %d): % x", err, p.N, in.Length, p.Buf)
			}
			return p
		case <-deadline:
			t.Fatalf("no packet on flow %d within %v of Provoke", flow, waitTimeout)
		}
	}
}

func (s suite) readBack(t *testing.T) {
	sub := s.open(t)
	if sub.Provoke == nil {
		t.Skip("no Provoke: nothing to read")
	}
	got, _ := reader(t, sub.Adapter, 2048)
	expectOn(t, got, sub.Provoke(t, sub.Adapter))
	// Buffers were scribbled on after the first read: a second round
	// must still come back whole.
	expectOn(t, got, sub.Provoke(t, sub.Adapter))
}

func (s suite) smallBuffer(t *testing.T) {
	sub := s.open(t)
	if sub.Provoke == nil {
		t.Skip("no Provoke: nothing to read")
	}
	got, _ := reader(t, sub.Adapter, 20) // smaller than any reply with a transport header
	sub.Provoke(t, sub.Adapter)
	select {
	case p := <-got:
		if in, err := ippkt.Parse(p.Buf); err != nil || in.Length != p.N {
			t.Fatalf("a packet larger than the buffer came back truncated to %d bytes (%v); want it dropped", p.N, err)
		}
	case <-time.After(200 * time.Millisecond): // dropped, as it should be
	}
}

func (s suite) fullBatch(t *testing.T) {
	sub := s.open(t)
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		p := Probe()
		pkts[i] = adapter.Packet{Buf: p, N: len(p), Flow: uint64(i + 1)}
	}
	if n, err := sub.Adapter.WritePackets(pkts); err != nil || n != len(pkts) {
		t.Fatalf("WritePackets of a full batch = %d, %v; want %d, nil", n, err, len(pkts))
	}
}

func (s suite) badPackets(t *testing.T) {
	sub := s.open(t)
	good := Probe()
	pkts := []adapter.Packet{
		{Buf: make([]byte, 10), N: 40},                 // N past the buffer
		{Buf: make([]byte, 10), N: 0},                  // empty
		{Buf: []byte{0xff, 1, 2, 3, 4, 5, 6}, N: 7},    // not IPv4 or IPv6
		{Buf: good[:25], N: 25},                        // truncated
		{Buf: append(make([]byte, 0, 64), 0x45), N: 1}, // one byte
		{Buf: good, N: len(good)},
	}
	if n, err := sub.Adapter.WritePackets(pkts); err != nil || n != len(pkts) {
		t.Fatalf("WritePackets with malformed packets = %d, %v; want them consumed (%d, nil): an adapter drops and counts bad packets", n, err, len(pkts))
	}
}

func (s suite) writeOwnership(t *testing.T) {
	sub := s.open(t)
	var got <-chan adapter.Packet
	if sub.Provoke != nil {
		got, _ = reader(t, sub.Adapter, 2048)
	}
	for range 4 {
		p := Probe()
		if _, err := sub.Adapter.WritePackets([]adapter.Packet{{Buf: p, N: len(p), Flow: 3}}); err != nil {
			t.Fatalf("WritePackets: %v", err)
		}
		for i := range p {
			p[i] = 0xEE // the adapter must be done with it
		}
	}
	if got != nil {
		expectOn(t, got, sub.Provoke(t, sub.Adapter))
	}
}

func (s suite) closeUnblocks(t *testing.T) {
	sub := s.open(t)
	_, done := reader(t, sub.Adapter, 2048)
	time.Sleep(50 * time.Millisecond) // let ReadPackets block
	if err := sub.Adapter.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, adapter.ErrClosed) {
			t.Fatalf("blocked ReadPackets returned %v after Close; want adapter.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Close did not unblock ReadPackets within %v", waitTimeout)
	}
	if _, err := sub.Adapter.ReadPackets([]adapter.Packet{{Buf: make([]byte, 2048)}}); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("ReadPackets after Close: %v; want adapter.ErrClosed", err)
	}
	p := Probe()
	if _, err := sub.Adapter.WritePackets([]adapter.Packet{{Buf: p, N: len(p)}}); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("WritePackets after Close: %v; want adapter.ErrClosed", err)
	}
	if err := sub.Adapter.Close(); err != nil {
		t.Errorf("a second Close: %v; want nil (Close is idempotent)", err)
	}
}

func (s suite) concurrentWrite(t *testing.T) {
	sub := s.open(t)
	if sub.Provoke != nil {
		reader(t, sub.Adapter, 2048) // keep replies from backing up
	}
	const writers, calls = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				p := Probe()
				if _, err := sub.Adapter.WritePackets([]adapter.Packet{{Buf: p, N: len(p), Flow: uint64(w + 1)}}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
