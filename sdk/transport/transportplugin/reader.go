package transportplugin

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// reader is the host's receive side. One message may hold more packets
// than the caller's slice; the rest stay in buf for the next ReadBatch.
type reader struct {
	c   *client
	mu  sync.Mutex // ReadBatch has one caller, but be safe
	buf []byte
	dec decoder

	packets, tooBig, malformed atomic.Uint64
}

// read blocks until packets arrive, the transport closes (ErrClosed), or,
// while the child restarts, until the new child is ready.
func (r *reader) read(pkts []transport.Packet) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]byte, datachan.MaxMessage)
	}
	for {
		if r.c.closed.Load() {
			return 0, transport.ErrClosed
		}
		if n := r.fill(pkts); n > 0 {
			r.packets.Add(uint64(n))
			return n, nil
		}
		d, ready := r.c.data.Wait()
		if d == nil {
			select {
			case <-ready:
			case <-r.c.closing:
			}
			continue
		}
		if d.shm != nil {
			n, err := r.readShm(d, pkts)
			if err != nil {
				r.c.shmFailed(d, err)
				continue
			}
			if n > 0 {
				r.packets.Add(uint64(n))
				return n, nil
			}
			continue
		}
		m, err := d.sock.Read(r.buf)
		if err != nil {
			// Our Close, or the child died: either way this channel is
			// finished; the loop reports ErrClosed or waits for the next.
			r.c.data.Drop(d)
			continue
		}
		if r.dec.reset(r.buf[:m]) != nil {
			r.malformed.Add(1)
		}
	}
}

// fill copies decoded packets into pkts. Datagrams larger than their
// destination Buf are dropped, as the transport contract says.
func (r *reader) fill(pkts []transport.Packet) int {
	n := 0
	for n < len(pkts) && r.dec.left > 0 {
		addr, data, err := r.dec.next()
		if err != nil {
			r.malformed.Add(1)
			break
		}
		if r.put(&pkts[n], addr, data) {
			n++
		}
	}
	return n
}

// put copies one datagram into p, or counts it as too big for p's Buf
// (dropped, as the transport contract says) and reports false.
func (r *reader) put(p *transport.Packet, addr netip.AddrPort, data []byte) bool {
	if len(data) > len(p.Buf) {
		r.tooBig.Add(1)
		return false
	}
	p.N = copy(p.Buf, data)
	p.Addr = addr
	return true
}
