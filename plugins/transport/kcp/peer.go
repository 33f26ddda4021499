package kcp

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/tarzan-net/tarzan/plugins/transport/internal/rxqueue"
)

// A peer is the KCP session with one remote address. Besides kcp-go's own
// goroutines (its read loop on conn, its packet post-processing and the
// shared update scheduler) it has two of ours, owned by the transport:
// sendLoop moves datagrams from sendq into KCP, readLoop moves messages
// from KCP to the transport's receive queue. Both end when closed is
// closed.
type peer struct {
	t      *kcpTransport
	addr   netip.AddrPort
	conv   uint32
	sess   *kcp.UDPSession
	in     chan []byte // raw packets from the receive loop, read by kcp-go
	sendq  chan outgoing
	closed chan struct{}
	once   sync.Once

	heard atomic.Bool  // the peer has sent under conv (it knows the session)
	last  atomic.Int64 // unix nanoseconds of the last packet heard, or of creation
	// unanswered is the unix nanoseconds of the first write since the
	// last packet heard (0: none): a live KCP peer acknowledges within a
	// round trip, so a long-unanswered write means it lost the session.
	unanswered atomic.Int64
}

type outgoing struct {
	buf *[]byte // from bufPool
	n   int
	at  time.Time
}

// newPeer opens a session with addr under conv; conv 0 picks one at
// random. The caller holds t.mu with the transport open.
func (t *kcpTransport) newPeer(addr netip.AddrPort, conv uint32) *peer {
	for conv == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		conv = binary.LittleEndian.Uint32(b[:])
	}
	p := &peer{t: t, addr: addr, conv: conv, in: make(chan []byte, 1024),
		sendq: make(chan outgoing, t.opts.queue), closed: make(chan struct{})}
	p.last.Store(time.Now().UnixNano())
	o := t.opts
	sess, _ := kcp.NewConn3(conv, net.UDPAddrFromAddrPort(addr), nil, o.fecData, o.fecParity, peerConn{p})
	sess.SetStreamMode(false) // message mode: one Write, one message
	sess.SetWriteDelay(false) // flush on every Write: latency over batching
	sess.SetACKNoDelay(true)  // ack at once, so losses are found quickly
	if o.nodelay {
		// RTO floor 30 ms, ×1.5 back-off, fast resend after 2 duplicate
		// acks, no congestion window: the tunnelled TCP does congestion
		// control, a second one underneath only fights it.
		sess.SetNoDelay(1, o.interval, 2, 1)
	} else {
		sess.SetNoDelay(0, o.interval, 0, 0)
	}
	sess.SetWindowSize(o.window, o.window)
	sess.SetMtu(o.kcpMTU())
	p.sess = sess
	t.stats.sessions.Add(1)
	t.wg.Add(2)
	go p.sendLoop()
	go p.readLoop()
	return p
}

func (p *peer) lastHeard() time.Time { return time.Unix(0, p.last.Load()) }

// unansweredFor is how long the oldest write not followed by any packet
// from the peer has waited (0: none waits).
func (p *peer) unansweredFor(now time.Time) time.Duration {
	if w := p.unanswered.Load(); w != 0 {
		return now.Sub(time.Unix(0, w))
	}
	return 0
}

func (p *peer) close() {
	p.once.Do(func() {
		close(p.closed)
		_ = p.sess.Close()
	})
}

// deliver hands a copy of a received packet to kcp-go.
func (p *peer) deliver(b []byte) {
	p.last.Store(time.Now().UnixNano())
	p.unanswered.Store(0)
	select {
	case p.in <- append([]byte(nil), b...):
	default:
		p.t.stats.inputDrops.Add(1)
	}
}

// enqueue copies b for sendLoop; a full queue drops it.
func (p *peer) enqueue(b []byte) {
	buf := bufPool.Get().(*[]byte)
	n := copy(*buf, b)
	select {
	case p.sendq <- outgoing{buf: buf, n: n, at: time.Now()}:
	default:
		bufPool.Put(buf)
		p.t.stats.sendDrops.Add(1)
	}
}

// sendLoop writes queued datagrams into KCP, up to a batch per Write.
// Write blocks while the send window is full; a datagram that has waited
// max_delay_ms is dropped rather than sent late: the TCP inside has given
// up on it by then and will retransmit.
func (p *peer) sendLoop() {
	t := p.t
	defer t.wg.Done()
	batch := make([]outgoing, 0, 64)
	bufs := make([][]byte, 0, 64)
	for {
		select {
		case <-p.closed:
			for {
				select {
				case m := <-p.sendq:
					bufPool.Put(m.buf)
				default:
					return
				}
			}
		case m := <-p.sendq:
			batch = append(batch[:0], m)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case m := <-p.sendq:
				batch = append(batch, m)
			default:
				break more
			}
		}
		now := time.Now()
		bufs = bufs[:0]
		var oldest time.Time
		for _, m := range batch {
			if now.Sub(m.at) > t.opts.maxDelay {
				t.stats.sendDrops.Add(1)
				continue
			}
			if oldest.IsZero() {
				oldest = m.at
			}
			bufs = append(bufs, (*m.buf)[:m.n])
		}
		if len(bufs) > 0 {
			p.unanswered.CompareAndSwap(0, now.UnixNano())
			_ = p.sess.SetWriteDeadline(oldest.Add(t.opts.maxDelay))
			if _, err := p.sess.WriteBuffers(bufs); err != nil {
				t.stats.sendDrops.Add(uint64(len(bufs)))
			}
		}
		for i, m := range batch {
			bufPool.Put(m.buf)
			batch[i] = outgoing{}
		}
		clear(bufs)
	}
}

// readLoop moves whole messages from KCP to the transport's receive queue.
func (p *peer) readLoop() {
	t := p.t
	defer t.wg.Done()
	buf := make([]byte, 1<<16) // any message whole, so none is split
	for {
		n, err := p.sess.Read(buf)
		if err != nil {
			return
		}
		if n > t.opts.maxPayload() {
			t.stats.oversize.Add(1)
			continue
		}
		b := bufPool.Get().(*[]byte)
		copy(*b, buf[:n])
		select {
		case t.rx.C <- rxqueue.Datagram{Addr: p.addr, Buf: b, N: n}:
		case <-p.closed:
			bufPool.Put(b)
			return
		}
	}
}

// peerConn is the net.PacketConn kcp-go reads the peer's packets from and
// writes them through. Writes never fail: a failing socket write would
// end the session in kcp-go, while for us it is one lost datagram.
type peerConn struct{ p *peer }

func (c peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case pkt := <-c.p.in:
		return copy(b, pkt), net.UDPAddrFromAddrPort(c.p.addr), nil
	case <-c.p.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c peerConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	_, _ = c.p.t.conn.WriteToUDPAddrPort(b, c.p.addr)
	return len(b), nil
}

func (c peerConn) Close() error                     { return nil } // the transport owns the socket
func (c peerConn) LocalAddr() net.Addr              { return c.p.t.conn.LocalAddr() }
func (c peerConn) SetDeadline(time.Time) error      { return nil }
func (c peerConn) SetReadDeadline(time.Time) error  { return nil }
func (c peerConn) SetWriteDeadline(time.Time) error { return nil }
