// Package rxqueue is the receive side the dtls and kcp transports share:
// their session goroutines queue received datagrams in pooled buffers, and
// ReadBatch hands them out in batches.
package rxqueue

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Datagram is one received datagram waiting for ReadBatch. Buf comes from
// the queue's pool and goes back to it once copied out.
type Datagram struct {
	Addr netip.AddrPort
	Buf  *[]byte
	N    int
}

// Queue holds received datagrams.
type Queue struct {
	C        chan Datagram
	Pool     *sync.Pool     // where Buf comes from
	Oversize *atomic.Uint64 // counts datagrams larger than the reader's buffer
}

// Read blocks until at least one datagram is queued (or done is closed,
// giving transport.ErrClosed), then takes as many more as are ready and
// fit in pkts. A datagram larger than its Packet.Buf is dropped and counted.
func (q *Queue) Read(pkts []transport.Packet, done <-chan struct{}) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	n := 0
	for n == 0 {
		select {
		case <-done:
			return 0, transport.ErrClosed
		case d := <-q.C:
			n = q.fill(pkts, n, d)
		}
	drain:
		for n < len(pkts) {
			select {
			case d := <-q.C:
				n = q.fill(pkts, n, d)
			default:
				break drain
			}
		}
	}
	return n, nil
}

func (q *Queue) fill(pkts []transport.Packet, n int, d Datagram) int {
	defer q.Pool.Put(d.Buf)
	p := &pkts[n]
	if d.N > len(p.Buf) {
		q.Oversize.Add(1)
		return n
	}
	p.N = copy(p.Buf, (*d.Buf)[:d.N])
	p.Addr = d.Addr
	return n + 1
}

// Drain returns the buffers of datagrams nobody will read.
func (q *Queue) Drain() {
	for {
		select {
		case d := <-q.C:
			q.Pool.Put(d.Buf)
		default:
			return
		}
	}
}
