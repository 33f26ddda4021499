package stackgroup

import (
	"slices"
	"sync"

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

// take copies queued packets into pkts, round robin over the stacks.
func (r *Reader) take(pkts []adapter.Packet) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, k := 0, len(r.stacks)
	if k == 0 {
		return 0
	}
	for idle := 0; idle < k && n < len(pkts); {
		s := r.stacks[r.next%k]
		r.next = (r.next + 1) % k
		pkb := s.ep.Read()
		if pkb == nil {
			idle++
			continue
		}
		idle = 0
		if pkb.Size() <= len(pkts[n].Buf) {
			m := 0
			for _, b := range pkb.AsSlices() {
				m += copy(pkts[n].Buf[m:], b)
			}
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
