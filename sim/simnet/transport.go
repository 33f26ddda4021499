package simnet

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Transport is one node's interface to the network: a transport.Transport
// named "sim".
//
// Pipeline: WriteBatch (any goroutine) judges each datagram against the
// sender's uplink bucket and the path, copies it and pushes it on the
// receiver's heap ordered by due time; ReadBatch (the receiver's one
// reading goroutine) pops what is due, sleeping until the earliest
// datagram is.
type Transport struct {
	net    *Network
	notify chan struct{} // a datagram was queued (capacity 1)
	closed chan struct{}
	once   sync.Once

	// Sender state, under sendMu: the uplink bucket and the generator.
	sendMu sync.Mutex
	rng    *rand.Rand
	tokens float64
	filled time.Time

	mu    sync.Mutex
	addr  netip.AddrPort
	queue dueHeap
	order uint64 // tie-break for equal due times: FIFO
}

type datagram struct {
	from netip.AddrPort
	data []byte
	at   time.Time
	seq  uint64
}

// dueHeap is a min-heap of datagrams by due time.
type dueHeap []datagram

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(datagram)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = datagram{}
	*h = old[:len(old)-1]
	return d
}

// Name returns "sim".
func (t *Transport) Name() string { return "sim" }

// Addr is the bound address.
func (t *Transport) Addr() netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

// Listen binds to addr, which must be a specified address with a port.
func (t *Transport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	if t.isClosed() {
		return addr, transport.ErrClosed
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.addr.IsValid() {
		return addr, errors.New("simnet: already listening")
	}
	if err := t.net.bind(t, addr); err != nil {
		return addr, err
	}
	t.addr = addr
	return addr, nil
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// WriteBatch sends every packet; losses are silent, as with UDP.
func (t *Transport) WriteBatch(pkts []transport.Packet) error {
	if t.isClosed() {
		return transport.ErrClosed
	}
	from := t.Addr()
	if !from.IsValid() {
		return errors.New("simnet: Listen was not called")
	}
	n := t.net
	now := time.Now()
	rec := n.recorder()
	for _, p := range pkts {
		n.sent.Add(1)
		n.bytes.Add(uint64(p.N))
		lp := n.params(from.Addr(), p.Addr.Addr())
		if p.N > lp.MTU {
			n.dropMTU.Add(1)
			continue
		}
		depart, at, ok := t.judge(now, p.N, lp)
		if rec != nil && !depart.IsZero() {
			rec(Observation{Src: from, Dst: p.Addr, Size: p.N, Sent: depart, Arrived: at})
		}
		if !ok {
			continue
		}
		dst := n.lookup(p.Addr)
		if dst == nil {
			n.dropNone.Add(1)
			continue
		}
		// Copy: the caller owns p.Buf again as soon as we return.
		dst.enqueue(datagram{from: from, data: append([]byte(nil), p.Buf[:p.N]...), at: at})
	}
	return nil
}

// judge charges the uplink bucket and decides loss and delay; it returns
// the departure and due times, or false when the datagram is dropped
// (depart is zero when it never left the uplink, at is zero when lost).
func (t *Transport) judge(now time.Time, size int, lp LinkParams) (depart, at time.Time, ok bool) {
	n := t.net
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	depart = now
	if bw := n.cfg.Bandwidth; bw > 0 {
		if t.filled.IsZero() {
			t.filled = now
		}
		t.tokens = min(n.cfg.Burst, t.tokens+now.Sub(t.filled).Seconds()*bw)
		t.filled = now
		// Tokens may go negative: the debt is the queue ahead of us.
		if wait := time.Duration((float64(size) - t.tokens) / bw * float64(time.Second)); wait > 0 {
			if wait > n.cfg.MaxQueueDelay {
				n.dropQ.Add(1)
				return time.Time{}, time.Time{}, false
			}
			depart = now.Add(wait)
		}
		t.tokens -= float64(size)
	}
	if lp.Loss > 0 && t.rng.Float64() < lp.Loss {
		n.dropLoss.Add(1)
		return depart, time.Time{}, false
	}
	delay := lp.Latency
	if lp.Jitter > 0 {
		delay += time.Duration(t.rng.Int64N(int64(lp.Jitter)))
	}
	return depart, depart.Add(delay), true
}

func (t *Transport) enqueue(d datagram) {
	t.mu.Lock()
	if len(t.queue) >= t.net.cfg.QueueLimit || t.isClosed() {
		t.mu.Unlock()
		t.net.dropQ.Add(1)
		return
	}
	t.order++
	d.seq = t.order
	heap.Push(&t.queue, d)
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// ReadBatch blocks until at least one datagram is due.
func (t *Transport) ReadBatch(pkts []transport.Packet) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n, wait := t.take(pkts)
		if n > 0 {
			return n, nil
		}
		var due <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		select {
		case <-t.closed:
			return 0, transport.ErrClosed
		case <-t.notify:
		case <-due:
		}
	}
}

// take moves due datagrams into pkts; if none is due it returns how long
// until the first one is (0: the queue is empty).
func (t *Transport) take(pkts []transport.Packet) (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	n := 0
	for len(t.queue) > 0 && n < len(pkts) {
		if t.queue[0].at.After(now) {
			break
		}
		d := heap.Pop(&t.queue).(datagram)
		if len(d.data) > len(pkts[n].Buf) {
			t.net.dropBuf.Add(1)
			continue
		}
		pkts[n].N = copy(pkts[n].Buf, d.data)
		pkts[n].Addr = d.from
		n++
	}
	t.net.delivered.Add(uint64(n))
	if n == 0 && len(t.queue) > 0 {
		return 0, t.queue[0].at.Sub(now)
	}
	return n, 0
}

// Close unbinds the transport and unblocks ReadBatch.
func (t *Transport) Close() error {
	t.once.Do(func() {
		close(t.closed)
		t.mu.Lock()
		addr := t.addr
		t.queue = nil
		t.mu.Unlock()
		if addr.IsValid() {
			t.net.unbind(addr, t)
		}
	})
	return nil
}
