package stackgroup

import (
	"slices"
	"sync"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/gso"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Reader is an adapter's ReadPackets over all its groups' stacks. Each
// stack's link endpoint calls WriteNotify after queuing a packet, which
// leaves a token on ready without blocking; Read takes packets from the
// endpoints directly and waits on ready only when every queue was empty.
// The token is left after the packet is queued, so a packet queued after
// Read found the queues empty always wakes it.
type Reader struct {
	ready  chan struct{}
	closed <-chan struct{}

	mu     sync.Mutex
	stacks []*Stack
	next   int // the stack Read starts with, for fairness between groups

	// seg holds a large TCP segment of one stack (segFrom) being cut into
	// packets of the MTU (the stacks' links declare segmentation offload:
	// see gso); take empties it before it looks at the queues again.
	seg     gso.Segmenter
	segFrom *Stack
}

// NewReader returns a Reader whose Read returns adapter.ErrClosed once
// closed is closed.
func NewReader(closed <-chan struct{}) *Reader {
	return &Reader{ready: make(chan struct{}, 1), closed: closed}
}

// WriteNotify implements channel.Notification.
func (r *Reader) WriteNotify() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *Reader) add(s *Stack) {
	r.mu.Lock()
	r.stacks = append(r.stacks, s)
	r.mu.Unlock()
}

func (r *Reader) remove(s *Stack) {
	r.mu.Lock()
	if i := slices.Index(r.stacks, s); i >= 0 {
		r.stacks = slices.Delete(r.stacks, i, i+1)
	}
	if r.segFrom == s {
		r.seg.Release() // the group is gone: so is the rest of its segment
		r.segFrom = nil
	}
	r.mu.Unlock()
}

// Read blocks for the first packet any stack queued, then takes whatever
// else is queued, one packet per stack in turn, up to len(pkts). A packet
// larger than the caller's buffer is dropped. It returns
// adapter.ErrClosed once closed and nothing was read.
func (r *Reader) Read(pkts []adapter.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-r.closed:
			return 0, adapter.ErrClosed
		default:
		}
		if n := r.take(pkts); n > 0 {
			return n, nil
		}
		select {
		case <-r.ready:
		case <-r.closed:
			return 0, adapter.ErrClosed
		}
	}
}

// take copies queued packets into pkts, round robin over the stacks; a
// large TCP segment (up to 64 KiB, see gso) is cut into packets of the
// MTU straight into pkts, continued by the next take if pkts is full.
func (r *Reader) take(pkts []adapter.Packet) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, k := 0, len(r.stacks)
	n = r.cut(pkts, n)
	for idle := 0; idle < k && n < len(pkts); {
		s := r.stacks[r.next%k]
		r.next = (r.next + 1) % k
		pkb := s.ep.Read()
		if pkb == nil {
			idle++
			continue
		}
		idle = 0
		if gso.Needs(pkb) {
			if r.seg.Load(pkb) {
				r.segFrom = s
				n = r.cut(pkts, n)
			}
			continue
		}
		if m, ok := gso.Copy(pkts[n].Buf, pkb); ok {
			pkts[n].N, pkts[n].Flow = m, s.Flow
			n++
		}
		pkb.DecRef()
	}
	if n == len(pkts) {
		// More may be queued: make sure the next Read looks without
		// waiting for a new packet.
		r.WriteNotify()
	}
	return n
}

// cut fills pkts[n:] from the segment being cut; r.mu is held.
func (r *Reader) cut(pkts []adapter.Packet, n int) int {
	for n < len(pkts) && !r.seg.Done() {
		if m := r.seg.Next(pkts[n].Buf); m > 0 {
			pkts[n].N, pkts[n].Flow = m, r.segFrom.Flow
			n++
		}
	}
	return n
}
