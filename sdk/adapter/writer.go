package adapter

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// Writer turns packets that arrive one at a time, from many goroutines,
// into batched WritePackets calls: the core gets one packet per DATA cell,
// from whichever goroutine relayed the cell, and across a plugin boundary
// 64 calls of one packet cost about ten times what one call of 64 does
// (D30). Write copies the packet into a queue and returns; one
// goroutine (Run) hands what is queued to the adapter, BatchSize packets
// per call. Nothing waits for a batch to fill: a packet that finds the
// writer idle goes at once, and batches form only while the adapter is
// busy, so a batch adds no latency.
//
// Fair queueing. When the adapter is the slowest stage of the path (a
// SOCKS child's stack, for instance), its queue here is where a bulk
// download's packets wait, hundreds at a time; a packet of another
// connection that joined the end of one queue would wait for all of them.
// So the queue is split by connection: packets are hashed on their Flow
// and their IP 5-tuple (addresses, protocol, ports; fragments on
// addresses and protocol) into fqBuckets queues, and each batch takes one
// packet from each non-empty queue in turn (round robin, as fq_codel's
// deficit round robin with equal-sized packets). A connection's packets
// leave in the order they were written; packets of different connections
// may overtake each other.
//
// CloseFlow reaches the adapter after every packet written before it and
// before CloseFlow returns, as when the caller wrote directly. When the
// queue is full Write drops the packet (reports false), as a router's full
// queue would, instead of stalling the caller (a link's reader, for the
// core).
type Writer struct {
	a     Adapter
	limit int
	onErr func(lost int, err error)
	wake  chan struct{}
	seed  maphash.Seed

	mu      sync.Mutex
	buckets [fqBuckets]bucket
	active  ring     // buckets with packets, in round-robin order
	count   int      // packets queued
	spare   []Packet // the batch Run handed over last, reused
	free    [][]byte // packet buffers Run is done with, at most limit
	closed  bool
	queued  uint64     // packets ever queued; the next packet's sequence number
	lowest  uint64     // every packet numbered below has been handed to the adapter (or dropped by stop)
	moved   *sync.Cond // on mu: lowest advanced, or closed
}

// fqBuckets is the number of queues packets are hashed into.
const fqBuckets = 64

// bucket is one queue of the Writer: a FIFO of packets, each with its
// sequence number.
type bucket struct {
	pkts []Packet
	seqs []uint64
	head int
}

func (b *bucket) empty() bool { return b.head == len(b.pkts) }

// pop removes the bucket's first packet; a bucket that never empties
// (a bulk flow) is compacted now and then, so it does not grow.
func (b *bucket) pop() Packet {
	p := b.pkts[b.head]
	b.pkts[b.head] = Packet{}
	b.head++
	if b.head >= 64 && 2*b.head >= len(b.pkts) {
		n := copy(b.pkts, b.pkts[b.head:])
		copy(b.seqs, b.seqs[b.head:])
		clear(b.pkts[n:])
		b.pkts, b.seqs, b.head = b.pkts[:n], b.seqs[:n], 0
	}
	return p
}

// ring is a FIFO of bucket numbers; each bucket is in it at most once.
type ring struct {
	k    [fqBuckets]int
	head int
	n    int
}

func (r *ring) push(k int) { r.k[(r.head+r.n)%fqBuckets] = k; r.n++ }

func (r *ring) pop() int {
	k := r.k[r.head]
	r.head = (r.head + 1) % fqBuckets
	r.n--
	return k
}

// DefaultWriterQueue is the queue length of a Writer made with limit 0:
// 1024 packets of at most 2 KiB each.
const DefaultWriterQueue = 1024

// NewWriter returns a Writer for a; start its Run. limit bounds the queue
// (0: DefaultWriterQueue). onErr, if not nil, is called from Run with the
// packets of a batch the adapter did not accept and its error.
func NewWriter(a Adapter, limit int, onErr func(lost int, err error)) *Writer {
	if limit <= 0 {
		limit = DefaultWriterQueue
	}
	w := &Writer{a: a, limit: limit, onErr: onErr, wake: make(chan struct{}, 1), seed: maphash.MakeSeed()}
	w.moved = sync.NewCond(&w.mu)
	return w
}

// Write queues a copy of pkt for flow. It reports false, and keeps
// nothing, if the queue is full or Run has returned.
func (w *Writer) Write(flow uint64, pkt []byte) bool {
	k := w.bucketOf(flow, pkt)
	w.mu.Lock()
	if w.closed || w.count >= w.limit {
		w.mu.Unlock()
		return false
	}
	b := &w.buckets[k]
	if b.empty() {
		b.pkts, b.seqs, b.head = b.pkts[:0], b.seqs[:0], 0
		w.active.push(k)
	}
	b.pkts = append(b.pkts, Packet{Buf: append(w.buf(len(pkt)), pkt...), N: len(pkt), Flow: flow})
	b.seqs = append(b.seqs, w.queued)
	w.queued++
	w.count++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // Run is already awake
	}
	return true
}

// bucketOf hashes flow and pkt's IP 5-tuple (what of it the packet has)
// to a bucket. It does not allocate.
func (w *Writer) bucketOf(flow uint64, pkt []byte) int {
	var key [8 + 1 + 32 + 4]byte
	binary.LittleEndian.PutUint64(key[:], flow)
	n := 8
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0x0f) * 4
		key[n] = pkt[9]
		n += 1 + copy(key[n+1:], pkt[12:20])
		fragment := binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 // MF or an offset
		if !fragment && hasPorts(pkt[9]) && len(pkt) >= ihl+4 && ihl >= 20 {
			n += copy(key[n:], pkt[ihl:ihl+4])
		}
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		key[n] = pkt[6] // next header: extension headers are hashed without ports
		n += 1 + copy(key[n+1:], pkt[8:40])
		if hasPorts(pkt[6]) && len(pkt) >= 44 {
			n += copy(key[n:], pkt[40:44])
		}
	}
	return int(maphash.Bytes(w.seed, key[:n]) % fqBuckets)
}

func hasPorts(proto byte) bool { return proto == 6 || proto == 17 } // TCP, UDP

// CloseFlow calls the adapter's CloseFlow(flow) (adapter.FlowCloser; a
// no-op for an adapter without it) once every packet written before has
// been handed to the adapter, so that a flow's last packets cannot bring
// back the state CloseFlow drops. It waits for at most the batch in
// flight and what is queued; once Run has returned it calls at once.
func (w *Writer) CloseFlow(flow uint64) error {
	fc, ok := w.a.(FlowCloser)
	if !ok {
		return nil
	}
	w.mu.Lock()
	for target := w.queued; w.lowest < target && !w.closed; {
		w.moved.Wait()
	}
	w.mu.Unlock()
	return fc.CloseFlow(flow)
}

// Run hands queued packets to the adapter until done is closed; then
// Write refuses further packets and what is still queued is dropped.
func (w *Writer) Run(done <-chan struct{}) {
	defer w.stop()
	for {
		select {
		case <-w.wake:
		case <-done:
			return
		}
		for w.flush() {
		}
	}
}

// flush hands up to BatchSize queued packets to the adapter, one from
// each non-empty bucket in turn, and reports whether there was anything
// to hand.
func (w *Writer) flush() bool {
	w.mu.Lock()
	batch := w.spare[:0]
	w.spare = nil
	for len(batch) < BatchSize && w.active.n > 0 {
		k := w.active.pop()
		b := &w.buckets[k]
		batch = append(batch, b.pop())
		if !b.empty() {
			w.active.push(k)
		}
	}
	w.count -= len(batch)
	w.mu.Unlock()
	if len(batch) == 0 {
		w.mu.Lock()
		w.spare = batch
		w.mu.Unlock()
		return false
	}
	if n, err := w.a.WritePackets(batch); err != nil && w.onErr != nil {
		w.onErr(len(batch)-n, err)
	}
	w.mu.Lock()
	for i := range batch {
		if cap(batch[i].Buf) == writerBuf && len(w.free) < w.limit {
			w.free = append(w.free, batch[i].Buf[:0])
		}
		batch[i] = Packet{}
	}
	w.spare = batch[:0]
	w.lowest = w.queued
	for i := range w.active.n {
		if b := &w.buckets[w.active.k[(w.active.head+i)%fqBuckets]]; b.seqs[b.head] < w.lowest {
			w.lowest = b.seqs[b.head]
		}
	}
	w.moved.Broadcast()
	w.mu.Unlock()
	return true
}

func (w *Writer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.buckets, w.active = [fqBuckets]bucket{}, ring{}
	w.spare, w.free, w.count = nil, nil, 0
	w.moved.Broadcast()
}

// writerBuf is the size of the queue's packet buffers: packets a tunnel
// carries are at most InnerMTU plus a little; a larger one (an adapter's
// own) gets a buffer of its own that is not kept.
const writerBuf = 2048

// buf returns an empty buffer for n bytes; w.mu is held.
func (w *Writer) buf(n int) []byte {
	if n > writerBuf {
		return make([]byte, 0, n)
	}
	if k := len(w.free); k > 0 {
		b := w.free[k-1]
		w.free = w.free[:k-1]
		return b
	}
	return make([]byte, 0, writerBuf)
}
