package adapter

import (
	"sync"
)

// Writer turns packets that arrive one at a time, from many goroutines,
// into batched WritePackets calls: the core gets one packet per DATA cell,
// from whichever goroutine relayed the cell, and across a plugin boundary
// 64 calls of one packet cost about ten times what one call of 64 does
// (D30). Write copies the packet into a queue and returns; one
// goroutine (Run) hands everything queued since its last call to the
// adapter in one batch. Nothing waits for a batch to fill: a packet that
// finds the writer idle goes at once, and batches form only while the
// adapter is busy, so a batch adds no latency.
//
// Packets leave in the order they were written, and CloseFlow reaches the
// adapter after every packet written before it and before CloseFlow
// returns, as when the caller wrote directly. When the queue is full Write drops the packet (reports false),
// as a router's full queue would, instead of stalling the caller (a link's
// reader, for the core).
type Writer struct {
	a     Adapter
	limit int
	onErr func(lost int, err error)
	wake  chan struct{}

	mu     sync.Mutex
	queue  []Packet // written, not yet handed to the adapter
	spare  []Packet // the batch Run handed over last, reused
	free   [][]byte // packet buffers Run is done with, at most limit
	closed bool
	queued uint64     // packets ever queued
	handed uint64     // of those, handed to the adapter (or dropped by stop)
	moved  *sync.Cond // on mu: handed advanced, or closed
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
	w := &Writer{a: a, limit: limit, onErr: onErr, wake: make(chan struct{}, 1)}
	w.moved = sync.NewCond(&w.mu)
	return w
}

// Write queues a copy of pkt for flow. It reports false, and keeps
// nothing, if the queue is full or Run has returned.
func (w *Writer) Write(flow uint64, pkt []byte) bool {
	if !w.Queue(flow, pkt) {
		return false
	}
	w.Kick()
	return true
}

// Queue is Write without waking Run: the packet waits for the caller's
// Kick (or the next Write). A caller that writes packets in batches
// queues them all, then kicks once: Run wakes once per batch, not once
// per packet, and the caller never waits for the adapter (a stuck
// adapter fills the queue, and Queue then drops).
func (w *Writer) Queue(flow uint64, pkt []byte) bool {
	w.mu.Lock()
	if w.closed || len(w.queue) >= w.limit {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, Packet{Buf: append(w.buf(len(pkt)), pkt...), N: len(pkt), Flow: flow})
	w.queued++
	w.mu.Unlock()
	return true
}

// Kick wakes Run for what Queue queued.
func (w *Writer) Kick() {
	select {
	case w.wake <- struct{}{}:
	default: // Run is already awake
	}
}

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
	for target := w.queued; w.handed < target && !w.closed; {
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

// flush hands the queue to the adapter, BatchSize packets per call, and
// reports whether there was anything to hand.
func (w *Writer) flush() bool {
	w.mu.Lock()
	batch := w.queue
	w.queue, w.spare = w.spare[:0], nil
	upTo := w.queued
	w.mu.Unlock()
	if len(batch) == 0 {
		w.mu.Lock()
		w.spare = batch
		w.mu.Unlock()
		return false
	}
	for rest := batch; len(rest) > 0; {
		chunk := rest[:min(len(rest), BatchSize)]
		if n, err := w.a.WritePackets(chunk); err != nil && w.onErr != nil {
			w.onErr(len(chunk)-n, err)
		}
		rest = rest[len(chunk):]
	}
	w.mu.Lock()
	for i := range batch {
		if cap(batch[i].Buf) == writerBuf && len(w.free) < w.limit {
			w.free = append(w.free, batch[i].Buf[:0])
		}
		batch[i] = Packet{}
	}
	w.spare = batch[:0]
	w.handed = upTo
	w.moved.Broadcast()
	w.mu.Unlock()
	return true
}

func (w *Writer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.queue, w.spare, w.free = nil, nil, nil
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
