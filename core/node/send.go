package node

// Send path. Every goroutine kind of the engine is numbered in node.go's
// package comment; these are the ones a frame passes on its way out:
//
//  1. the caller's goroutine builds a link payload in a pooled frameBuf:
//     a tunnel's cell (tunnel.go sendTo: the IP service's client reader,
//     loop cover, a build or check), a relayed cell (relay.go, on the
//     receive goroutine, recvLoop: the very buffer the frame was opened
//     into), a reply at an exit (the IP service's exit reader), a
//     keepalive (maintainLoop);
//  2. sendPayload: on an unshaped link sealAndSend seals it with the link
//     session at once, in place in the same buffer (AES-256-GCM), and
//     enqueues the frame on the endpoint's out queue;
//     on a shaped link the plaintext waits in the link's bounded queue
//     (full: dropped, drop_queue_full);
//  3. shapeLoop (cover.go) releases a shaped link's queued payloads in its
//     slots, sealing each then, and fills the empty slots with padding;
//  4. while a batch is being handled (a receive loop's, or a service's
//     between Cork and Uncork) nothing queued wakes the writer: the
//     goroutine that ends the last batch writes the queue itself (flush),
//     in WriteBatch calls of up to transport.BatchSize frames; outside a
//     batch, writeLoop (one per transport) is woken to write it.

import (
	"errors"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Link payload layout (docs/PROTOCOL.md §4): kind(1) reserved(3)
// circuit_id(4) cell(1368).
const (
	kindPadding   = 0
	kindCreate    = 1
	kindCreated   = 2
	kindRelayFwd  = 3
	kindRelayBwd  = 4
	kindDestroy   = 5
	kindKeepalive = 6

	payloadHeader = 8
)

// frameBuf is one frame with its destination. Buffers are pooled; whoever
// takes one from the pool owns it until it is put back. A link payload
// sits where the frame's AEAD will put its ciphertext, after the clear
// header's room: a payload is sealed in place into the frame, and a
// received frame is opened into a frameBuf whose payload, once a relay
// has changed its onion layer and link header in place, is sealed in
// place again for the next hop. No copy of a cell between receive and
// send.
type frameBuf struct {
	b  [link.FrameSize]byte
	n  int
	to peerAddr
}

var framePool = sync.Pool{New: func() any { return new(frameBuf) }}

func getBuf() *frameBuf { return framePool.Get().(*frameBuf) }

func putBuf(f *frameBuf) {
	f.n = 0
	f.to = peerAddr{}
	framePool.Put(f)
}

// payload returns the link-plaintext view of a buffer: where Seal reads
// it in place and Open writes it.
func (f *frameBuf) payload() []byte { return f.b[link.HeaderSize : link.HeaderSize+link.PayloadSize] }

// sendRaw queues a complete frame (handshake, probe, proof) for to.
func (n *Node) sendRaw(to peerAddr, frame []byte) {
	f := getBuf()
	f.n = copy(f.b[:], frame)
	f.to = to
	n.enqueue(f)
}

func (n *Node) enqueue(f *frameBuf) {
	n.writing.Add(1) // until written: Close waits for it (lifecycle.go, drained)
	ep := n.eps[f.to.ep]
	for {
		ep.qmu.Lock()
		if ep.qn < len(ep.q) {
			ep.q[(ep.qhead+ep.qn)%len(ep.q)] = f
			ep.qn++
			ep.qlen.Store(int32(ep.qn))
			ep.qmu.Unlock()
			break
		}
		if ep.space == nil {
			ep.space = make(chan struct{})
		}
		space := ep.space
		ep.qmu.Unlock()
		// Full: the writer must write now, whoever holds the cork, or a
		// receive loop blocked here would never end its batch.
		kick(ep)
		select {
		case <-space:
		case <-n.stop:
			n.writing.Add(-1)
			putBuf(f)
			return
		}
	}
	if n.corks.Load() == 0 {
		kick(ep) // nobody will flush it at the end of a batch
	}
}

func kick(ep *endpoint) {
	select {
	case ep.wake <- struct{}{}:
	default:
	}
}

// Batching across the receive → relay → writer hand-off. Whoever handles
// a batch (a receive loop with the frames of one ReadBatch, a service's
// fair-queue sender with its packets: Cork, Uncork) corks the writers
// for its duration: what it queues does not wake the writer goroutine,
// and the last of them to uncork writes everything queued itself, on its
// own goroutine, in WriteBatch calls of up to transport.BatchSize frames
// (flush). A relayed frame therefore leaves with no goroutine hand-off
// at all: the receive loop reads a batch, relays it and writes it. The
// writer goroutine only writes what is queued outside a batch
// (keepalives, builds, a service sending alone) or while another
// goroutine holds the flush. The frames still go through the one FIFO
// queue per transport, written by one goroutine at a time, so nothing
// (a relayed cell, then a DESTROY on the same circuit) is reordered.

func (n *Node) cork(k int) {
	if k > 0 {
		n.corks.Add(1)
	}
}

func (n *Node) uncork(k int) {
	if k > 0 && n.corks.Add(-1) == 0 {
		for _, ep := range n.eps {
			if ep.qlen.Load() != 0 {
				n.flush(ep, true)
			}
		}
		n.runBatchEnd()
	}
}

// Cork and Uncork bracket a batch of sends from one goroutine (a
// service's sender): the frames it makes leave together, written by
// that goroutine at Uncork (or by whoever uncorks last) rather than each
// waking the writer goroutine. Every Cork needs its Uncork; nothing
// between them may wait for a frame to be written.
func (n *Node) Cork() { n.cork(1) }

// Uncork ends a Cork; see Cork.
func (n *Node) Uncork() { n.uncork(1) }

// OnBatchEnd adds f to what runs on the goroutine that ends a batch (a
// receive loop after handling the frames of one read, or Uncork), after
// the batch's frames were handed to the transports. TunnelEvents.Data
// and ExitHandler.ExitData run inside a receive loop's batch, so a
// service can collect what they hand it and pass it on here in one go
// (ipservice's adapter writers). f must not block.
func (n *Node) OnBatchEnd(f func()) {
	n.batchMu.Lock()
	n.batchEnd = append(n.batchEnd, f)
	n.batchEndN.Store(int32(len(n.batchEnd)))
	n.batchMu.Unlock()
}

func (n *Node) runBatchEnd() {
	if n.batchEndN.Load() == 0 {
		return
	}
	n.batchMu.Lock()
	fs := n.batchEnd
	n.batchMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// flush writes what ep's queue holds, in batches of up to
// transport.BatchSize, on the caller's goroutine. One goroutine flushes
// an endpoint at a time; with try, a caller that finds another flushing
// wakes the writer goroutine instead of waiting (whoever flushes may be
// about to find the queue empty and stop).
func (n *Node) flush(ep *endpoint, try bool) {
	if try {
		select {
		case ep.wmu <- struct{}{}:
		default:
			kick(ep)
			return
		}
	} else {
		ep.wmu <- struct{}{}
	}
	defer func() { <-ep.wmu }()
	for {
		ep.qmu.Lock()
		k := min(ep.qn, len(ep.bufs))
		for i := range k {
			j := (ep.qhead + i) % len(ep.q)
			ep.bufs[i], ep.q[j] = ep.q[j], nil
		}
		ep.qhead = (ep.qhead + k) % len(ep.q)
		ep.qn -= k
		ep.qlen.Store(int32(ep.qn))
		if space := ep.space; space != nil && k > 0 {
			close(space)
			ep.space = nil
		}
		ep.qmu.Unlock()
		if k == 0 {
			return
		}
		n.writeOut(ep, ep.bufs[:k])
	}
}

var errNoSession = errors.New("node: no established link")

// inlineRoom is how many frames an endpoint's writer queue may hold for
// a non-blocking send (Tunnel.TrySendData, ExitCircuit.TryReply) to
// still go ahead. The queue holds 4,096 frames, shared by every tunnel
// and every relayed cell: 0.8 s of a tunnel at 5,000 frames/s. The
// IP service's fair queues send inline only while the writer is this
// close to idle (a few of its batches), and keep the backlog in their
// own per-flow queues otherwise, where a fat flow's packets are the
// ones that wait and drop (D39, D46).
const inlineRoom = 4 * transport.BatchSize

// hasRoom reports whether a payload for l would be taken now without
// a wait: on a shaped link its queue has room, otherwise the writer
// queue of l's endpoint holds fewer than inlineRoom frames.
func (n *Node) hasRoom(l *peerLink) bool {
	if l.shaped() {
		return len(l.queue) < cap(l.queue)
	}
	_, addr := l.sendSession()
	return int(n.eps[addr.ep].qlen.Load()) < inlineRoom
}

// awaitRoom waits until hasRoom(l), or the node stops. A shaped link's
// queue drops when it is full (drop_queue_full) and is not waited for.
func (n *Node) awaitRoom(l *peerLink) {
	for !l.shaped() {
		_, addr := l.sendSession()
		ep := n.eps[addr.ep]
		ep.roomWaiters.Add(1)
		ep.roomMu.Lock()
		if ep.room == nil {
			ep.room = make(chan struct{})
		}
		ch := ep.room
		ep.roomMu.Unlock()
		if int(ep.qlen.Load()) < inlineRoom {
			ep.roomWaiters.Add(-1)
			return
		}
		select {
		case <-ch:
			ep.roomWaiters.Add(-1)
		case <-n.stop:
			ep.roomWaiters.Add(-1)
			return
		}
	}
}

// roomMade wakes awaitRoom's waiters once the writer has brought its
// queue under inlineRoom frames.
func (ep *endpoint) roomMade() {
	if ep.roomWaiters.Load() == 0 || int(ep.qlen.Load()) >= inlineRoom {
		return
	}
	ep.roomMu.Lock()
	if ep.room != nil {
		close(ep.room)
		ep.room = nil
	}
	ep.roomMu.Unlock()
}

// sendPayload sends one link payload to a mimic. The payload is
// p.payload(); sendPayload takes ownership of p. On an unshaped link the
// frame is sealed now; on a shaped link the plaintext waits in the link's
// queue for its slot.
func (n *Node) sendPayload(l *peerLink, p *frameBuf) error {
	if l.shaped() {
		select {
		case l.queue <- p:
			return nil
		default:
			putBuf(p)
			n.stats.inc(DropQueueFull)
			return errors.New("node: link queue full")
		}
	}
	return n.sealAndSend(l, p, false)
}

// sealAndSend encrypts p's payload in place into a frame (p itself) and
// hands it to the writer. padding only feeds the statistics.
func (n *Node) sealAndSend(l *peerLink, p *frameBuf, padding bool) error {
	if tap := n.opts.Tap; tap != nil && tap.Sending != nil && !tap.Sending(l.id, p.payload()) {
		putBuf(p)
		return nil
	}
	s, addr := l.sendSession()
	if s == nil {
		putBuf(p)
		return errNoSession
	}
	out, err := s.Seal(p.b[:0], p.payload())
	if err != nil {
		putBuf(p)
		return err
	}
	p.n = len(out)
	p.to = addr
	l.noteSent(n.opts.Clock.Now(), padding)
	if padding {
		n.stats.inc(EventPaddingOut)
	}
	n.enqueue(p)
	return nil
}

// writeLoop writes what is queued on ep outside a batch (see cork).
func (n *Node) writeLoop(ep *endpoint) {
	for {
		select {
		case <-ep.wake:
		case <-n.stop:
			return
		}
		n.flush(ep, false)
	}
}

// writeOut hands bufs to ep's transport in one WriteBatch and releases
// them; ep.wmu is held.
func (n *Node) writeOut(ep *endpoint, bufs []*frameBuf) {
	pkts := ep.pkts[:len(bufs)]
	for i, b := range bufs {
		pkts[i] = transport.Packet{Addr: b.to.ap, Buf: b.b[:b.n], N: b.n}
	}
	err := ep.tr.WriteBatch(pkts)
	if err != nil {
		n.stats.add(DropTransportWrite, uint64(len(bufs)))
		if !n.stopped() {
			n.limiter.Warn(n.log, "write-"+ep.name, "transport write failed", "transport", ep.name, "err", err)
		}
		if isTransient(err) {
			n.sleep(20 * time.Millisecond)
		}
	} else {
		n.stats.add(EventFramesOut, uint64(len(bufs)))
	}
	for i, b := range bufs {
		pkts[i] = transport.Packet{}
		bufs[i] = nil
		putBuf(b)
	}
	n.writing.Add(-int32(len(bufs)))
	ep.roomMade()
}
