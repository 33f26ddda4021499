package ipservice

import (
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// Flow queueing at a tunnel's entry (D39 in docs/DECISIONS.md). Both
// ends of a tunnel put what enters it through a fair queue: the client
// side what the client adapter's applications send (app → exit), the
// exit side what the exit adapter's servers answer (server → client).
// Each queue is served by one sender goroutine, so the adapter's reader
// never waits on the engine while another flow's packets are moving.
//
//   - Flows are the inner 5-tuples (with the tunnel or circuit they go
//     to), each with its own FIFO while it has packets queued (no hash
//     buckets: two flows never share one, so a collision cannot halve a
//     flow's share); the sender serves the busy flows with deficit round
//     robin (a quantum of one full cell per round), so
//     a flow with few packets is never stuck behind a fat flow's backlog
//     and every backlogged flow gets the same share of the tunnel.
//   - The queue is bounded (fqLimit packets, more than a tunnel's
//     bandwidth-delay product at loopback speeds). When it is full, the
//     oldest packet of the flow holding the most bytes is dropped
//     (counted: drop_flow_queue) and the new one taken, as fq_codel
//     does: the drop falls on the flow sending more than its share, as
//     the signal its TCP backs off on (from the head, so the sender
//     learns of it a queue earlier), and a flow that floods cannot crowd
//     out the others. The reader never waits on the queue: one reader
//     serves every flow of an adapter, and blocking it on one flow's
//     backlog would hold the other flows' packets behind it, in the
//     adapter, where no scheduler can reach them.

// Tor's congestion control (proposal 324) limits each circuit's window
// end to end with Vegas on RTT; here the inner TCPs already run their
// own congestion control end to end, so the tunnel only has to give them
// an honest, per-flow signal (their own packets dropped, or delayed)
// rather than a shared FIFO whose drops fall on whoever comes next.

const (
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
	key     fqKey
	pkts    []fqItem[T] // FIFO: pkts[head:]
	head    int
	bytes   int
	deficit int
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
	send func(items []fqItem[T]) // the sender's call, outside the lock
	// try sends one packet at once if the engine takes it without a
	// wait (Tunnel.TrySendData, ExitCircuit.TryReply); false: queue it.
	// nil: always queue.
	try func(to T, pkt []byte, info ippkt.Info) bool
	// room waits, before a batch is sent, until the engine takes a
	// packet for to without a wait (Tunnel.AwaitRoom): the backlog
	// stays here, per flow, rather than in the engine's shared writer
	// queue. nil: send at once (and block in the engine when it is full).
	room func(to T)
	// ready reports whether the engine takes a packet for to now without
	// a wait (Tunnel.HasRoom); with it, the reader that pushed a batch
	// sends it itself (drain) while nobody else is sending. nil: always
	// through the sender goroutine.
	ready func(to T) bool
	drop  func() // counts one packet dropped from a fat flow
	wake  chan struct{}
	done  <-chan struct{}
	limit int

	// sendMu is held (a token in it) by whoever pops and sends (run,
	// drain): one batch at a time, in order. A channel, not a
	// sync.Mutex, so that a sender waiting for it is durably blocked in
	// a synctest bubble.
	sendMu chan struct{}

	mu      sync.Mutex
	flows   map[fqKey]*fqBucket[T] // the busy flows
	active  []*fqBucket[T]         // the same, in round-robin order
	spare   []*fqBucket[T]         // emptied buckets for reuse
	total   int                    // packets queued
	sending int                    // packets popped and not yet sent
	bytes   int
	free    [][]byte
	stopped bool
}

func newFairQueue[T any](done <-chan struct{}, limit int, send func([]fqItem[T]), drop func()) *fairQueue[T] {
	return &fairQueue[T]{send: send, drop: drop, wake: make(chan struct{}, 1), sendMu: make(chan struct{}, 1), done: done, limit: limit, flows: map[fqKey]*fqBucket[T]{}}
}

// push sends pkt for to (a flow of tunnel or circuit id) at once while
// nothing is queued or being sent and the engine has room (try), or
// queues a copy of it, first dropping the oldest packet of the fattest
// flow if the queue is full. It never waits; it reports false if the
// queue stopped. Call kick after the last push of a batch.
//
// Sending inline saves the copy and the hand-off to the sender (a
// wake-up per batch) while there is no backlog to schedule; once the
// engine's writer backs up, every packet goes through the queue, so the
// flows share the tunnel by round robin and the drops fall on the
// fattest. A flow's packets are never reordered: inline only with
// nothing queued and nothing popped but unsent.
func (q *fairQueue[T]) push(id uint64, to T, pkt []byte, info ippkt.Info) bool {
	k := fqKey{to: id, src: info.Src, dst: info.Dst, sp: info.SrcPort, dp: info.DstPort, proto: info.Proto}
	q.mu.Lock()
	if q.try != nil && q.total == 0 && q.sending == 0 && !q.stopped {
		q.mu.Unlock()
		if q.try(to, pkt, info) {
			return true
		}
		q.mu.Lock()
	}
	if q.total >= q.limit && !q.stopped {
		q.dropHead(q.fattest())
		q.drop()
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
	b := q.flows[k]
	if b == nil {
		if n := len(q.spare); n > 0 {
			b, q.spare = q.spare[n-1], q.spare[:n-1]
		} else {
			b = &fqBucket[T]{}
		}
		b.key = k
		q.flows[k] = b
		q.active = append(q.active, b)
	}
	if b.head > 32 && b.head*2 > len(b.pkts) { // a bucket that never empties
		k := copy(b.pkts, b.pkts[b.head:])
		clear(b.pkts[k:])
		b.pkts, b.head = b.pkts[:k], 0
	}
	b.pkts = append(b.pkts, fqItem[T]{to: to, buf: append(buf[:0], pkt...), info: info})
	b.bytes += len(pkt)
	q.total++
	q.bytes += len(pkt)
	q.mu.Unlock()
	return true
}

// kick wakes the sender for what push queued: callers push a whole batch
// first, then kick once, so the sender wakes once per batch, not per
// packet (each wake-up of an idle goroutine is a futex call and a
// context switch).
func (q *fairQueue[T]) kick() {
	if q == nil { // no fair queue (Options.FairQueue < 0)
		return
	}
	select {
	case q.wake <- struct{}{}:
	default: // the sender is awake already
	}
}

// fattest is the busy flow with the most bytes queued; q.mu is held
// and the queue is not empty.
func (q *fairQueue[T]) fattest() *fqBucket[T] {
	fat := q.active[0]
	for _, b := range q.active[1:] {
		if b.bytes > fat.bytes {
			fat = b
		}
	}
	return fat
}

// dropHead drops b's oldest packet; q.mu is held.
func (q *fairQueue[T]) dropHead(b *fqBucket[T]) {
	it := b.pkts[b.head]
	b.pkts[b.head] = fqItem[T]{}
	b.head++
	b.bytes -= len(it.buf)
	q.total--
	q.bytes -= len(it.buf)
	q.recycle(it.buf)
	if b.len() == 0 {
		q.retire(b)
	}
}

func (q *fairQueue[T]) recycle(buf []byte) {
	if cap(buf) == fqBuf && len(q.free) < q.limit {
		q.free = append(q.free, buf[:0])
	}
}

// retire takes the empty flow b off the round; q.mu is held.
func (q *fairQueue[T]) retire(b *fqBucket[T]) {
	delete(q.flows, b.key)
	for i, a := range q.active {
		if a == b {
			q.active = append(q.active[:i], q.active[i+1:]...)
			break
		}
	}
	b.pkts, b.head, b.bytes, b.deficit, b.key = b.pkts[:0], 0, 0, 0, fqKey{}
	if cap(b.pkts) <= 4*fqBatch && len(q.spare) < fqBatch {
		q.spare = append(q.spare, b)
	}
}

// pop moves up to len(out) packets, in deficit round robin order, into
// out; q.mu is held.
func (q *fairQueue[T]) pop(out []fqItem[T]) int {
	n := 0
	for n < len(out) && len(q.active) > 0 {
		b := q.active[0]
		if b.deficit <= 0 {
			b.deficit += fqQuantum
			copy(q.active, q.active[1:]) // to the back of the round
			q.active[len(q.active)-1] = b
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
			q.retire(b)
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
		select {
		case q.sendMu <- struct{}{}:
		case <-q.done:
			return
		}
		for !q.isDone() && q.sendOne(batch, true) {
		}
		<-q.sendMu
	}
}

// sendOne pops one batch and sends it; q.sendMu is held. With wait it
// first waits for the engine's room (room); without, it sends only if
// the engine has room now (ready) and reports false otherwise. It
// reports whether it sent anything.
func (q *fairQueue[T]) sendOne(batch []fqItem[T], wait bool) bool {
	q.mu.Lock()
	if !wait {
		if len(q.active) == 0 || !q.ready(q.active[0].pkts[q.active[0].head].to) {
			q.mu.Unlock()
			return false
		}
	}
	n := q.pop(batch)
	q.sending = n
	q.mu.Unlock()
	if n == 0 {
		return false
	}
	if wait && q.room != nil {
		q.room(batch[0].to)
	}
	q.send(batch[:n])
	q.mu.Lock()
	q.sending = 0
	for i := range batch[:n] {
		q.recycle(batch[i].buf)
		batch[i] = fqItem[T]{}
	}
	q.mu.Unlock()
	return true
}

// drain is kick for a reader that has pushed a batch: while nobody else
// is sending and the engine has room, it sends the queue itself, in
// deficit round robin order as the sender would (no wake-up of the
// sender goroutine, no hand-off); what is left (the engine's writer is
// backed up) goes to the sender, which waits for room. ready must be
// set.
func (q *fairQueue[T]) drain(batch []fqItem[T]) {
	if q == nil {
		return
	}
	if q.ready == nil {
		q.kick()
		return
	}
	select {
	case q.sendMu <- struct{}{}:
	default:
		q.kick()
		return
	}
	for !q.isDone() && q.sendOne(batch, false) {
	}
	<-q.sendMu
	if q.queued() > 0 {
		q.kick()
	}
}

func (q *fairQueue[T]) isDone() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func (q *fairQueue[T]) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
}

// queued is how many packets wait.
func (q *fairQueue[T]) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

// trySendClient is the client fair queue's inline send (push): into
// the tunnel chosen for the packet, if the engine takes it now. A
// tunnel that is closed or set aside is left to the queue's sender,
// which knows what to do with it (sendClient).
func (s *Service) trySendClient(it *ipTunnel, pkt []byte, info ippkt.Info) bool {
	sent, err := it.t.TrySendData(pkt)
	if !sent || err != nil {
		return false
	}
	s.trackFromApp(&it.flows, pkt, info) // for exitLost's resets
	return true
}

func awaitClientRoom(it *ipTunnel) { it.t.AwaitRoom() }
func awaitExitRoom(ef *exitFlow)   { ef.c.AwaitRoom() }

// trySendExit is the exit fair queue's inline send (push): down the
// packet's circuit, if the engine takes it now.
func trySendExit(ef *exitFlow, pkt []byte, _ ippkt.Info) bool { return ef.c.TryReply(pkt) }
