package pt

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"
)

// peer is one remote node: a bounded queue of frames and a writer that
// owns the stream we dialled to it.
type peer struct {
	t    *Transport
	addr netip.AddrPort
	q    chan frame

	mu sync.Mutex
	in net.Conn // the latest stream the peer dialled to us (fallback for writes)
}

// peer returns the peer at addr, starting its writer; nil after Close.
func (t *Transport) peer(addr netip.AddrPort) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if p := t.peers[addr]; p != nil {
		return p
	}
	p := &peer{t: t, addr: addr, q: make(chan frame, queueLen)}
	t.peers[addr] = p
	t.wg.Add(1)
	go p.writer()
	return p
}

func (p *peer) setInbound(c net.Conn) {
	p.mu.Lock()
	p.in = c
	p.mu.Unlock()
}

func (p *peer) clearInbound(c net.Conn) {
	p.mu.Lock()
	if p.in == c {
		p.in = nil
	}
	p.mu.Unlock()
}

func (p *peer) inbound() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in
}

// writer sends queued frames. It writes on a stream it dialled itself
// (the PT authenticates the server it reaches, e.g. obfs4's cert), dialling
// again with back-off when that stream dies; while it has none it falls
// back to the peer's own inbound stream (a peer we cannot reach, e.g.
// behind NAT). Frames with no stream to go on are dropped and counted.
func (p *peer) writer() {
	t := p.t
	defer t.wg.Done()
	var out net.Conn
	var w *bufio.Writer
	var next time.Time // no dial before this
	backoff := 100 * time.Millisecond
	defer func() {
		if out != nil {
			t.untrack(out)
		}
	}()
	for {
		var f frame
		select {
		case f = <-p.q:
		case <-t.done:
			return
		}
		if out == nil && !time.Now().Before(next) {
			if c := p.dial(); c != nil {
				out, w = c, bufio.NewWriterSize(c, 64<<10)
				backoff = 100 * time.Millisecond
			} else {
				next = time.Now().Add(backoff)
				backoff = min(2*backoff, maxBackoff)
			}
		}
		conn, bw := out, w
		if conn == nil {
			if in := p.inbound(); in != nil {
				conn, bw = in, bufio.NewWriterSize(in, 16<<10)
			}
		}
		if conn == nil {
			t.pool.Put(f.b)
			t.stats.queueDrops.Add(1)
			continue
		}
		if err := p.send(conn, bw, f); err != nil {
			conn.Close()
			if conn == out {
				t.untrack(out)
				out, w = nil, nil
			}
		}
	}
}

// send writes f and whatever else is queued (up to 64 frames), then flushes.
func (p *peer) send(c net.Conn, w *bufio.Writer, f frame) error {
	c.SetWriteDeadline(time.Now().Add(writeStall))
	var hdr [2]byte
	for k := 0; ; k++ {
		binary.BigEndian.PutUint16(hdr[:], uint16(f.n))
		w.Write(hdr[:])
		w.Write(f.b[:f.n])
		p.t.pool.Put(f.b)
		if k == 63 {
			break
		}
		select {
		case f = <-p.q:
			continue
		default:
		}
		break
	}
	return w.Flush()
}

// dial opens a stream to the peer through the PT client and says hello;
// a reader goroutine delivers what the peer sends back on it.
func (p *peer) dial() net.Conn {
	t := p.t
	args, ok := t.argsFor(p.addr)
	if !ok {
		t.stats.noArgs.Add(1)
		t.log.Debug("pt: no arguments for peer", "peer", p.addr, "err", errNoArgs)
		return nil
	}
	pairs, err := splitArgs(args)
	if err != nil {
		t.stats.dialFails.Add(1)
		return nil
	}
	t.stats.dials.Add(1)
	t.mu.Lock()
	cli, self := t.client, t.self
	t.mu.Unlock()
	c, err := socksDial(cli.method().addr, p.addr, socksArgs(pairs), dialTimeout)
	t.dialed(p.addr, args, err == nil)
	if err != nil {
		t.stats.dialFails.Add(1)
		t.log.Debug("pt: dial failed", "peer", p.addr, "err", err)
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(writeStall))
	if _, err := c.Write(hello(self)); err != nil {
		c.Close()
		t.stats.dialFails.Add(1)
		return nil
	}
	if !t.track(c) {
		c.Close()
		return nil
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.readFrames(bufio.NewReaderSize(c, 64<<10), p.addr)
		c.Close() // the writer sees the error and dials again
	}()
	return c
}
