package udp

// The data path. Each call borrows one preallocated batch from the pool,
// so the hot path allocates no message slices or addresses of its own
// (x/net still allocates one *net.UDPAddr per received datagram).
//
// Receive (ReadBatch, one goroutine owned by the caller):
//  1. point msgs[i].Buffers[0] at the caller's pkts[i].Buf;
//  2. recvmmsg fills up to min(len(pkts), batch) of them, blocking in the
//     Go netpoller until at least one datagram is there (Close wakes it);
//  3. datagrams flagged MSG_TRUNC (larger than their buffer) are dropped
//     and later ones moved down so that pkts[:n] is dense; if all were
//     dropped, go back to 2;
//  4. source addresses are unmapped (::ffff:a.b.c.d → a.b.c.d), so a
//     dual-stack socket reports IPv4 peers as IPv4.
//
// Send (WriteBatch, any number of goroutines):
//  1. for each chunk of up to batch packets, point the messages at the
//     caller's bytes and at preallocated destination addresses;
//  2. sendmmsg sends as many as it can; a message the kernel refuses
//     (unroutable, wrong family) is skipped and counted, so one bad
//     destination never holds back the rest of the batch;
//  3. the caller's buffers are released before WriteBatch returns.

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// batch is the per-call scratch space: messages plus the destination
// addresses they point at.
type batch struct {
	msgs  []ipv4.Message
	dsts  []net.UDPAddr
	dstIP [][16]byte // backing storage for dsts[i].IP
}

func newBatch(n int) *batch {
	b := &batch{
		msgs:  make([]ipv4.Message, n),
		dsts:  make([]net.UDPAddr, n),
		dstIP: make([][16]byte, n),
	}
	bufs := make([][]byte, n) // one iovec per message, carved from one array
	for i := range b.msgs {
		b.msgs[i].Buffers = bufs[i : i+1 : i+1]
	}
	return b
}

// release drops every reference to caller memory before the batch goes
// back to the pool.
func (b *batch) release(n int) {
	for i := range n {
		b.msgs[i].Buffers[0] = nil
		b.msgs[i].Addr = nil
	}
}

func (t *udpTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	s, err := t.socket()
	if err != nil {
		return 0, err
	}
	b := t.batches.Get().(*batch)
	defer t.batches.Put(b)
	n := min(len(pkts), len(b.msgs))
	if n == 0 {
		return 0, nil
	}
	msgs := b.msgs[:n]
	defer b.release(n)
	for {
		for i := range msgs {
			msgs[i].Buffers[0] = pkts[i].Buf
		}
		got, err := s.batch.ReadBatch(msgs, 0)
		if err != nil {
			return 0, t.ioError(err)
		}
		w := 0
		for i := range got {
			m := &msgs[i]
			if m.Flags&msgTrunc != 0 {
				continue // oversized: not a frame of ours
			}
			if i != w {
				if m.N > len(pkts[w].Buf) {
					continue // fits its own buffer but not the slot it moves to
				}
				copy(pkts[w].Buf, pkts[i].Buf[:m.N])
			}
			pkts[w].N = m.N
			pkts[w].Addr = unmapped(m.Addr)
			w++
		}
		if w > 0 {
			return w, nil
		}
	}
}

func unmapped(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (t *udpTransport) WriteBatch(pkts []transport.Packet) error {
	s, err := t.socket()
	if err != nil {
		return err
	}
	b := t.batches.Get().(*batch)
	defer t.batches.Put(b)
	total := len(pkts)
	var failed int
	var firstErr error
	for len(pkts) > 0 {
		n := min(len(pkts), len(b.msgs))
		for i := range n {
			b.point(i, &pkts[i])
		}
		for off := 0; off < n; {
			sent, err := s.batch.WriteBatch(b.msgs[off:n], 0)
			off += max(sent, 0)
			if err == nil {
				continue
			}
			if err = t.ioError(err); err == transport.ErrClosed {
				b.release(n)
				return err
			}
			// msgs[off] was refused: skip it, keep the rest going.
			failed++
			if firstErr == nil {
				firstErr = err
			}
			off++
		}
		b.release(n)
		pkts = pkts[n:]
	}
	if failed > 0 {
		return fmt.Errorf("udp: %d of %d datagrams not sent: %w", failed, total, firstErr)
	}
	return nil
}

// point aims message i at p's bytes and destination without allocating.
func (b *batch) point(i int, p *transport.Packet) {
	m, d := &b.msgs[i], &b.dsts[i]
	m.Buffers[0] = p.Buf[:p.N]
	ip := p.Addr.Addr()
	if ip.Is4() || ip.Is4In6() {
		// x/net sends any IPv4 address as AF_INET; Linux accepts that on a
		// dual-stack AF_INET6 socket too.
		*(*[4]byte)(b.dstIP[i][:4]) = ip.Unmap().As4()
		d.IP = b.dstIP[i][:4]
	} else {
		b.dstIP[i] = ip.As16() // zero for an invalid address: the kernel refuses it
		d.IP = b.dstIP[i][:]
	}
	d.Port = int(p.Addr.Port())
	d.Zone = ip.Zone()
	m.Addr = d
}
