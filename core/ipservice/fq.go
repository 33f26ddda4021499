package ipservice

import (
	"hash/maphash"
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/core/ippkt"
)

// Flow queueing at a tunnel's entry (D-FLOWS in docs/DECISIONS.md). Both
// ends of a tunnel put what enters it through a fair queue: the client
// side what the client adapter's applications send (app → exit), the
// exit side what the exit adapter's servers answer (server → client).
// Each queue is served by one sender goroutine, so the adapter's reader
// never waits on the engine while another flow's packets are moving.
//
//   - Flows are the inner 5-tuples (with the tunnel or circuit they go
//     to), hashed into fqBuckets buckets; the sender serves the buckets
//     with deficit round robin (a quantum of one full cell per round), so
//     a flow with few packets is never stuck behind a fat flow's backlog
//     and every backlogged flow gets the same share of the tunnel.
//   - The queue is bounded (fqLimit packets). When it is full and one
//     bucket holds more than twice the mean backlog of the busy buckets,
//     that bucket's oldest packet is dropped (counted: drop_flow_queue),
//     the signal a TCP sender backs off on, and the new packet is taken: a
//     flow that floods cannot crowd out the others. Otherwise (the flows
//     are about even) the reader waits for room: backpressure, so an even
//     bulk load loses nothing, as the direct call did before.
//
// Tor's congestion control (proposal 324) limits each circuit's window
// end to end with Vegas on RTT; here the inner TCPs already run their
// own congestion control end to end, so the tunnel only has to give them
// an honest, per-flow signal (their own packets dropped, or delayed)
// rather than a shared FIFO whose drops fall on whoever comes next.

const (
	fqBuckets = 1024
	fqLimit   = 512
	fqQuantum = 1400 // about one cell's packet
	fqBuf     = 2048
	fqBatch   = 64
)

// fqItem is one queued packet: its own copy, where it goes, and what
// ippkt.Parse found in it.
type fqItem[T any] struct {
	to   T
	buf  []byte
	info ippkt.Info
}

type fqBucket[T any] struct {
	pkts    []fqItem[T] // FIFO: pkts[head:]
	head    int
	bytes   int
	deficit int
	active  bool
}

func (b *fqBucket[T]) len() int { return len(b.pkts) - b.head }

// fqKey is what a flow is.
type fqKey struct {
	to       uint64 // tunnel or circuit
	src, dst netip.Addr
	sp, dp   uint16
	proto    uint8
}

// fairQueue is a bounded deficit-round-robin queue in front of send.
type fairQueue[T any] struct {
	send  func(items []fqItem[T]) // the sender's call, outside the lock
	drop  func()                  // counts one packet dropped from a fat flow
	seed  maphash.Seed
	wake  chan struct{}
	done  <-chan struct{}
	limit int

	mu      sync.Mutex
	room    *sync.Cond // on mu: the sender took packets, or done
	buckets [fqBuckets]fqBucket[T]
	active  []int // busy buckets, in round-robin order (a ring: active[next:] first)
	total   int   // packets queued
	bytes   int
	free    [][]byte
	stopped bool
}

func newFairQueue[T any](done <-chan struct{}, send func([]fqItem[T]), drop func()) *fairQueue[T] {
	q := &fairQueue[T]{send: send, drop: drop, seed: maphash.MakeSeed(), wake: make(chan struct{}, 1), done: done, limit: fqLimit}
	q.room = sync.NewCond(&q.mu)
	return q
}

// push queues a copy of pkt for to (a flow of tunnel or circuit id). It
// waits while the queue is full of about even flows; it reports false if
// the queue stopped.
func (q *fairQueue[T]) push(id uint64, to T, pkt []byte, info ippkt.Info) bool {
	k := fqKey{to: id, src: info.Src, dst: info.Dst, sp: info.SrcPort, dp: info.DstPort, proto: info.Proto}
	bi := int(maphash.Comparable(q.seed, k) % fqBuckets)
	q.mu.Lock()
	for q.total >= q.limit && !q.stopped {
		if fat := q.fattest(); fat >= 0 && q.buckets[fat].bytes*len(q.active) > 2*q.bytes {
			q.dropHead(fat)
			q.drop()
			break
		}
		q.room.Wait()
	}
	if q.stopped {
		q.mu.Unlock()
		return false
	}
	var buf []byte
	if n := len(q.free); n > 0 {
		buf, q.free = q.free[n-1], q.free[:n-1]
	} else {
		buf = make([]byte, 0, fqBuf)
	}
	b := &q.buckets[bi]
	if b.head > 32 && b.head*2 > len(b.pkts) { // a bucket that never empties
		k := copy(b.pkts, b.pkts[b.head:])
		clear(b.pkts[k:])
		b.pkts, b.head = b.pkts[:k], 0
	}
	b.pkts = append(b.pkts, fqItem[T]{to: to, buf: append(buf[:0], pkt...), info: info})
	b.bytes += len(pkt)
	q.total++
	q.bytes += len(pkt)
	if !b.active {
		b.active, b.deficit = true, 0
		q.active = append(q.active, bi)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// fattest is the busy bucket with the most bytes; q.mu is held.
func (q *fairQueue[T]) fattest() int {
	fat, most := -1, 0
	for _, bi := range q.active {
		if b := q.buckets[bi].bytes; b > most {
			fat, most = bi, b
		}
	}
	return fat
}

// dropHead drops bucket bi's oldest packet; q.mu is held.
func (q *fairQueue[T]) dropHead(bi int) {
	b := &q.buckets[bi]
	it := b.pkts[b.head]
	b.pkts[b.head] = fqItem[T]{}
	b.head++
	b.bytes -= len(it.buf)
	q.total--
	q.bytes -= len(it.buf)
	q.recycle(it.buf)
	if b.len() == 0 {
		q.retire(bi)
	}
}

func (q *fairQueue[T]) recycle(buf []byte) {
	if cap(buf) == fqBuf && len(q.free) < q.limit {
		q.free = append(q.free, buf[:0])
	}
}

// retire takes the empty bucket bi off the round; q.mu is held.
func (q *fairQueue[T]) retire(bi int) {
	b := &q.buckets[bi]
	b.pkts, b.head, b.bytes, b.deficit, b.active = b.pkts[:0], 0, 0, 0, false
	for i, a := range q.active {
		if a == bi {
			q.active = append(q.active[:i], q.active[i+1:]...)
			return
		}
	}
}

// pop moves up to len(out) packets, in deficit round robin order, into
// out; q.mu is held.
func (q *fairQueue[T]) pop(out []fqItem[T]) int {
	n := 0
	for n < len(out) && len(q.active) > 0 {
		bi := q.active[0]
		b := &q.buckets[bi]
		if b.deficit <= 0 {
			b.deficit += fqQuantum
			q.active = append(q.active[1:], bi) // to the back of the round
			continue
		}
		it := b.pkts[b.head]
		b.pkts[b.head] = fqItem[T]{}
		b.head++
		b.deficit -= len(it.buf)
		b.bytes -= len(it.buf)
		q.total--
		q.bytes -= len(it.buf)
		out[n] = it
		n++
		if b.len() == 0 {
			q.retire(bi)
		}
	}
	return n
}

// run is the sender: it hands queued packets to send until done.
func (q *fairQueue[T]) run() {
	defer q.stop()
	batch := make([]fqItem[T], fqBatch)
	for {
		select {
		case <-q.wake:
		case <-q.done:
			return
		}
		for {
			q.mu.Lock()
			n := q.pop(batch)
			if n > 0 {
				q.room.Broadcast()
			}
			q.mu.Unlock()
			if n == 0 {
				break
			}
			q.send(batch[:n])
			q.mu.Lock()
			for i := range batch[:n] {
				q.recycle(batch[i].buf)
				batch[i] = fqItem[T]{}
			}
			q.mu.Unlock()
		}
	}
}

func (q *fairQueue[T]) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.room.Broadcast()
}

// queued is how many packets wait.
func (q *fairQueue[T]) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}
