// Package adaptertest provides a fake adapter.Adapter for tests of the
// core and of the adapterplugin glue. The test plays "the world": it
// injects packets the adapter will read, and receives those the core wrote.
//
//	a := adaptertest.New(adapter.RoleExit)
//	a.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: 7})
//	got := <-a.Written()
package adaptertest

import (
	"errors"
	"net/netip"
	"slices"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// queueLen bounds both directions; Inject and WritePackets block when full.
const queueLen = 1024

// Fake is an in-memory adapter. It implements adapter.FlowCloser and
// adapter.ExcludeUpdater and records their calls.
type Fake struct {
	role    adapter.Role
	in      chan adapter.Packet // Inject → ReadPackets
	out     chan adapter.Packet // WritePackets → Written
	closed  chan struct{}
	closeMu sync.Once

	mu      sync.Mutex
	cfg     *adapter.Config
	flows   []uint64
	exclude []netip.Prefix
}

// New returns an unopened fake named "fake" in the given role.
func New(role adapter.Role) *Fake {
	return &Fake{role: role, in: make(chan adapter.Packet, queueLen),
		out: make(chan adapter.Packet, queueLen), closed: make(chan struct{})}
}

// Inject queues packets for ReadPackets; each is copied (Buf[:N]). It
// blocks while the queue is full and drops after Close.
func (f *Fake) Inject(pkts ...adapter.Packet) {
	for _, p := range pkts {
		p.Buf = slices.Clone(p.Buf[:p.N])
		select {
		case f.in <- p:
		case <-f.closed:
			return
		}
	}
}

// Written delivers a copy of every packet WritePackets accepted (Buf holds
// exactly the packet).
func (f *Fake) Written() <-chan adapter.Packet { return f.out }

// Config returns what Open was called with, and whether it was.
func (f *Fake) Config() (adapter.Config, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		return adapter.Config{}, false
	}
	return *f.cfg, true
}

// ClosedFlows returns the CloseFlow arguments so far.
func (f *Fake) ClosedFlows() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flows)
}

// Exclude returns the latest SetExclude argument.
func (f *Fake) Exclude() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.exclude)
}

func (f *Fake) Name() string       { return "fake" }
func (f *Fake) Role() adapter.Role { return f.role }

// Open records cfg; a second Open fails, as the contract asks.
func (f *Fake) Open(cfg adapter.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg != nil {
		return errors.New("adaptertest: already open")
	}
	f.cfg = &cfg
	f.exclude = cfg.Exclude
	return nil
}

// ReadPackets blocks for the first packet, then takes whatever else is
// already queued.
func (f *Fake) ReadPackets(pkts []adapter.Packet) (int, error) {
	n := 0
	for n < len(pkts) {
		var p adapter.Packet
		if n == 0 {
			select {
			case p = <-f.in:
			case <-f.closed:
				return 0, adapter.ErrClosed
			}
		} else {
			select {
			case p = <-f.in:
			default:
				return n, nil
			}
		}
		if p.N > len(pkts[n].Buf) {
			continue // too big for the caller's buffer: dropped
		}
		pkts[n].N = copy(pkts[n].Buf, p.Buf)
		pkts[n].Flow = p.Flow
		n++
	}
	return n, nil
}

// WritePackets queues a copy of each packet for Written, whatever it
// holds (glue tests send arbitrary bytes); a packet whose N lies outside
// its buffer is consumed and dropped, as the contract asks.
func (f *Fake) WritePackets(pkts []adapter.Packet) (int, error) {
	select {
	case <-f.closed:
		return 0, adapter.ErrClosed
	default:
	}
	for i, p := range pkts {
		if p.N < 0 || p.N > len(p.Buf) {
			continue
		}
		cp := adapter.Packet{Buf: slices.Clone(p.Buf[:p.N]), N: p.N, Flow: p.Flow}
		select {
		case f.out <- cp:
		case <-f.closed:
			return i, adapter.ErrClosed
		}
	}
	return len(pkts), nil
}

func (f *Fake) CloseFlow(flow uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flows = append(f.flows, flow)
	return nil
}

func (f *Fake) SetExclude(ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exclude = slices.Clone(ps)
	return nil
}

func (f *Fake) Close() error {
	f.closeMu.Do(func() { close(f.closed) })
	return nil
}
