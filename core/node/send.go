package node

// Send path. Every goroutine kind of the engine is numbered in node.go's
// package comment; these are the ones a frame passes on its way out:
//
//  1. the caller's goroutine builds a link payload in a pooled frameBuf:
//     a tunnel's cell (tunnel.go sendTo: the IP service's client reader,
//     loop cover, a build or check), a relayed cell (relay.go, on the
//     receive goroutine, recvLoop), a reply at an exit (the IP service's
//     exit reader), a keepalive (maintainLoop);
//  2. sendPayload: on an unshaped link sealAndSend seals it with the link
//     session at once and enqueues the frame on the endpoint's out queue;
//     on a shaped link the plaintext waits in the link's bounded queue
//     (full: dropped, drop_queue_full);
//  3. shapeLoop (cover.go) releases a shaped link's queued payloads in its
//     slots, sealing each then, and fills the empty slots with padding;
//  4. writeLoop (one per transport) drains the out queue in batches of up
//     to transport.BatchSize into WriteBatch.

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

// frameBuf is one outbound frame (or, on shaped links, one queued link
// payload) with its destination. Buffers are pooled; whoever takes one from
// the pool owns it until it is put back.
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

// payload returns the link-plaintext view of a buffer.
func (f *frameBuf) payload() []byte { return f.b[:link.PayloadSize] }

// sendRaw queues a complete frame (handshake, probe, proof) for to.
func (n *Node) sendRaw(to peerAddr, frame []byte) {
	f := getBuf()
	f.n = copy(f.b[:], frame)
	f.to = to
	n.enqueue(f)
}

func (n *Node) enqueue(f *frameBuf) {
	n.writing.Add(1) // until written: Close waits for it (lifecycle.go, drained)
	select {
	case n.eps[f.to.ep].out <- f:
	case <-n.stop:
		n.writing.Add(-1)
		putBuf(f)
	}
}

var errNoSession = errors.New("node: no established link")

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

// sealAndSend encrypts p's payload in place into a frame and hands it to
// the writer. padding only feeds the statistics.
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
	// Seal cannot work in place on the same array (the header shifts the
	// ciphertext), so seal into a second pooled buffer.
	f := getBuf()
	out, err := s.Seal(f.b[:0], p.payload())
	putBuf(p)
	if err != nil {
		putBuf(f)
		return err
	}
	f.n = len(out)
	f.to = addr
	l.noteSent(n.opts.Clock.Now(), padding)
	if padding {
		n.stats.inc(EventPaddingOut)
	}
	n.enqueue(f)
	return nil
}

// writeLoop batches one endpoint's queued frames into transport writes.
func (n *Node) writeLoop(ep *endpoint) {
	pkts := make([]transport.Packet, transport.BatchSize)
	bufs := make([]*frameBuf, 0, transport.BatchSize)
	for {
		var f *frameBuf
		select {
		case f = <-ep.out:
		case <-n.stop:
			return
		}
		bufs = append(bufs[:0], f)
	drain:
		for len(bufs) < transport.BatchSize {
			select {
			case f = <-ep.out:
				bufs = append(bufs, f)
			default:
				break drain
			}
		}
		for i, b := range bufs {
			pkts[i] = transport.Packet{Addr: b.to.ap, Buf: b.b[:b.n], N: b.n}
		}
		err := ep.tr.WriteBatch(pkts[:len(bufs)])
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
			putBuf(b)
		}
		n.writing.Add(-int32(len(bufs)))
	}
}
