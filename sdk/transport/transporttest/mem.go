package transporttest

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

var (
	errAddrInUse      = errors.New("transporttest: address already in use")
	errPortsExhausted = errors.New("transporttest: no free port")
	errNotListening   = errors.New("transporttest: Listen was not called")
)

type datagram struct {
	from netip.AddrPort
	data []byte
	at   time.Time // due time (latency)
}

// memTransport is one node's "mem" transport.
type memTransport struct {
	net    *Network
	notify chan struct{} // a datagram was queued (capacity 1)
	closed chan struct{}
	once   sync.Once

	mu    sync.Mutex
	addr  netip.AddrPort
	from  netip.AddrPort // the source peers see: addr, or the advertised address of a wildcard
	queue []datagram
}

func (t *memTransport) Name() string { return "mem" }

func (t *memTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed() {
		return addr, transport.ErrClosed
	}
	if t.addr.IsValid() {
		return addr, errors.New("transporttest: already listening")
	}
	bound, err := t.net.bind(t, addr)
	if err != nil {
		return addr, err
	}
	t.addr, t.from = bound, bound
	return bound, nil
}

// SetAdvertised makes a transport bound to a wildcard address (0.0.0.0 or
// [::]) send from adv, as a kernel picks a wildcard socket's source
// address; one bound to a specific address keeps sending from it.
func (t *memTransport) SetAdvertised(adv netip.AddrPort) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.addr.IsValid() {
		return errNotListening
	}
	if t.addr.Addr().IsUnspecified() {
		t.from = adv
	}
	return nil
}

func (t *memTransport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

func (t *memTransport) WriteBatch(pkts []transport.Packet) error {
	if t.isClosed() {
		return transport.ErrClosed
	}
	t.mu.Lock()
	from := t.from
	t.mu.Unlock()
	if !from.IsValid() {
		return errNotListening
	}
	at := time.Now().Add(t.net.latency)
	for _, p := range pkts {
		dst := t.net.route(p.Addr)
		if dst == nil {
			t.net.dropped.Add(1)
			continue
		}
		// Copy: the caller owns p.Buf again as soon as we return.
		dst.enqueue(datagram{from: from, data: append([]byte(nil), p.Buf[:p.N]...), at: at})
	}
	return nil
}

func (t *memTransport) enqueue(d datagram) {
	t.mu.Lock()
	if len(t.queue) >= queueLimit || t.isClosed() {
		t.mu.Unlock()
		t.net.dropped.Add(1)
		return
	}
	t.queue = append(t.queue, d)
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func (t *memTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	for {
		n, wait := t.take(pkts)
		if n > 0 {
			return n, nil
		}
		var timer *time.Timer
		var due <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			due = timer.C
		}
		select {
		case <-t.closed:
			return 0, transport.ErrClosed
		case <-t.notify:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// take moves due datagrams into pkts. If none is due it returns how long
// until the first one is (0: the queue is empty).
func (t *memTransport) take(pkts []transport.Packet) (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	n, used := 0, 0
	for used < len(t.queue) && n < len(pkts) {
		d := t.queue[used]
		if d.at.After(now) {
			break
		}
		used++
		if len(d.data) > len(pkts[n].Buf) {
			t.net.dropped.Add(1)
			continue
		}
		pkts[n].N = copy(pkts[n].Buf, d.data)
		pkts[n].Addr = d.from
		n++
	}
	clear(t.queue[:used]) // let the datagrams be collected
	t.queue = t.queue[used:]
	if n == 0 && len(t.queue) > 0 {
		return 0, t.queue[0].at.Sub(now)
	}
	return n, 0
}

func (t *memTransport) Close() error {
	t.once.Do(func() {
		close(t.closed)
		t.mu.Lock()
		addr := t.addr
		t.queue = nil
		t.mu.Unlock()
		if addr.IsValid() {
			t.net.unbind(addr)
		}
	})
	return nil
}
