package udp

// The data path. Each call borrows one preallocated batch from the pool,
// so the hot path allocates no message slices or addresses of its own
// (x/net still allocates one *net.UDPAddr per received message).
//
// Every link frame has one size, which is the case UDP segmentation
// offload was made for (udp(7)): with it a run of frames to one peer is
// one message and, on loopback, one trip through the kernel's stack.
// Both halves are detected at Listen and can be turned off (options gso,
// gro); without them the plain paths below run, one datagram per message.
//
// Receive (ReadBatch, one goroutine owned by the caller):
//  1. without GRO: point msgs[i].Buffers[0] at the caller's pkts[i].Buf;
//     recvmmsg fills up to min(len(pkts), batch) of them, blocking in the
//     Go netpoller until at least one datagram is there (Close wakes it);
//     datagrams flagged MSG_TRUNC (larger than their buffer) are dropped
//     and counted, later ones moved down so that pkts[:n] is dense;
//  2. with GRO: recvmmsg fills up to batch messages of the transport's own
//     64 KiB buffers; a message whose UDP_GRO control message gives a
//     segment size is split into datagrams of that size (the last may be
//     shorter), each copied into the next caller buffer (one that is too
//     small drops the datagram, counted). Messages and datagrams that do
//     not fit in pkts wait for the next call, which returns them without
//     a system call;
//  3. if every datagram was dropped, go back to 1 or 2;
//  4. source addresses are unmapped (::ffff:a.b.c.d → a.b.c.d), so a
//     dual-stack socket reports IPv4 peers as IPv4.
//
// Send (WriteBatch, any number of goroutines):
//  1. with GSO, the packets of each chunk of 64 are brought together by
//     destination (keeping each destination's order), and consecutive
//     packets to one destination with the size of the first (the last
//     may be shorter) become one message of up to 64
//     datagrams and 64 KiB, its iovecs the caller's buffers (no copy) and
//     a UDP_SEGMENT control message giving the size; without it, every
//     packet is one message. Messages point at preallocated destination
//     addresses;
//  2. sendmmsg sends as many messages as it can; a datagram the kernel
//     refuses (unroutable, wrong family) is skipped and counted, so one
//     bad destination never holds back the rest of the batch. A segmented
//     message the kernel refuses is sent again one datagram at a time,
//     and EIO (a device without checksum offload) turns GSO off for good;
//  3. the caller's buffers are released before WriteBatch returns.

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// batch is the per-call scratch space of a send: messages, the iovecs
// and control messages they use, and the destination addresses.
type batch struct {
	msgs   []ipv4.Message
	dsts   []net.UDPAddr
	dstIP  [][16]byte         // backing storage for dsts[i].IP
	one    [][]byte           // plain path: message i's single iovec is one[i]
	iov    [][]byte           // GSO path: one per packet, a message takes a run
	perm   []transport.Packet // GSO path: the chunk regrouped by destination
	oob    []byte             // GSO path: txOOBSpace bytes per message
	groups []group
}

func newBatch(n int) *batch {
	return &batch{
		msgs:   make([]ipv4.Message, n),
		dsts:   make([]net.UDPAddr, n),
		dstIP:  make([][16]byte, n),
		one:    make([][]byte, n),
		iov:    make([][]byte, transport.BatchSize),
		perm:   make([]transport.Packet, 0, transport.BatchSize),
		oob:    make([]byte, n*txOOBSpace),
		groups: make([]group, 0, n),
	}
}

// release drops every reference to caller memory before the batch goes
// back to the pool.
func (b *batch) release(msgs int) {
	for i := range msgs {
		b.msgs[i].Buffers, b.msgs[i].OOB, b.msgs[i].Addr = nil, nil, nil
	}
	clear(b.one)
	clear(b.iov)
}

// dest fills destination i from a without allocating.
func (b *batch) dest(i int, a netip.AddrPort) *net.UDPAddr {
	d := &b.dsts[i]
	ip := a.Addr()
	if ip.Is4() || ip.Is4In6() {
		// x/net sends any IPv4 address as AF_INET; Linux accepts that on a
		// dual-stack AF_INET6 socket too.
		*(*[4]byte)(b.dstIP[i][:4]) = ip.Unmap().As4()
		d.IP = b.dstIP[i][:4]
	} else {
		b.dstIP[i] = ip.As16() // zero for an invalid address: the kernel refuses it
		d.IP = b.dstIP[i][:]
	}
	d.Port = int(a.Port())
	d.Zone = ip.Zone()
	return d
}

// point aims message i at p alone.
func (b *batch) point(i int, p *transport.Packet) {
	m := &b.msgs[i]
	b.one[i] = p.Buf[:p.N]
	m.Buffers = b.one[i : i+1 : i+1]
	m.OOB = nil
	m.Addr = b.dest(i, p.Addr)
}

// pointGroup aims message j at the packets of g, segmented if g has more
// than one.
func (b *batch) pointGroup(j int, pkts []transport.Packet, g group) {
	m := &b.msgs[j]
	run := b.iov[g.first : g.first+g.count : g.first+g.count]
	for k := range run {
		p := &pkts[g.first+k]
		run[k] = p.Buf[:p.N]
	}
	m.Buffers = run
	m.OOB = nil
	if g.count > 1 {
		m.OOB = putSegment(b.oob[j*txOOBSpace:(j+1)*txOOBSpace], g.size)
	}
	m.Addr = b.dest(j, pkts[g.first].Addr)
}

// sendResult counts datagrams the kernel refused.
type sendResult struct {
	failed int
	first  error
}

func (r *sendResult) fail(n int, err error) {
	r.failed += n
	if r.first == nil {
		r.first = err
	}
}

func (t *udpTransport) WriteBatch(pkts []transport.Packet) error {
	s, err := t.socket()
	if err != nil {
		return err
	}
	var r sendResult
	if t.gso.Load() && len(pkts) > 1 {
		err = t.writeGSO(s, pkts, &r)
	} else {
		err = t.writePlain(s, pkts, &r)
	}
	if err != nil {
		return err
	}
	if r.failed > 0 {
		t.txRefused.Add(uint64(r.failed))
		return fmt.Errorf("udp: %d of %d datagrams not sent: %w", r.failed, len(pkts), r.first)
	}
	return nil
}

// writePlain sends one datagram per message. It returns only
// transport.ErrClosed; refusals are counted in r.
func (t *udpTransport) writePlain(s *socket, pkts []transport.Packet, r *sendResult) error {
	b := t.batches.Get().(*batch)
	defer t.batches.Put(b)
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
			r.fail(1, err) // msgs[off] was refused: skip it, keep the rest going
			off++
		}
		b.release(n)
		pkts = pkts[n:]
	}
	return nil
}

// writeGSO sends runs of packets as segmented messages; see the header.
func (t *udpTransport) writeGSO(s *socket, pkts []transport.Packet, r *sendResult) error {
	b := t.batches.Get().(*batch)
	defer t.batches.Put(b)
	defer clear(b.perm[:cap(b.perm)])
	for len(pkts) > 0 {
		n := min(len(pkts), len(b.iov))
		chunk := regroup(b.perm, pkts[:n])
		pkts = pkts[n:]
		for len(chunk) > 0 {
			if !t.gso.Load() { // turned off on the way
				if err := t.writePlain(s, chunk, r); err != nil {
					return err
				}
				break
			}
			groups := coalesce(b.groups[:0], chunk, len(b.msgs), maxSegments, maxGSOBytes)
			for j, g := range groups {
				b.pointGroup(j, chunk, g)
			}
			done, err := t.sendGroups(s, b, chunk, groups, r)
			b.release(len(groups))
			if err != nil {
				return err
			}
			t.txMessages.Add(uint64(len(groups)))
			chunk = chunk[done:]
		}
	}
	return nil
}

// sendGroups sends the messages b holds for groups and returns how many
// packets of chunk were dealt with (all, unless GSO was turned off).
func (t *udpTransport) sendGroups(s *socket, b *batch, chunk []transport.Packet, groups []group, r *sendResult) (int, error) {
	for off := 0; off < len(groups); {
		sent, err := s.batch.WriteBatch(b.msgs[off:len(groups)], 0)
		off += max(sent, 0)
		if err == nil {
			continue
		}
		if err = t.ioError(err); err == transport.ErrClosed {
			return 0, err
		}
		g := groups[off]
		off++
		if g.count == 1 {
			r.fail(1, err)
			continue
		}
		// A segmented message refused: EIO means the device cannot do
		// it at all; anything else (a path MTU below the segment size)
		// concerns this message only. Its datagrams go one by one.
		t.gsoRetries.Add(1)
		if disablesGSO(err) && t.gso.CompareAndSwap(true, false) {
			t.gsoDisabled.Add(1)
		}
		end := g.first + g.count
		if err := t.writePlain(s, chunk[g.first:end], r); err != nil {
			return 0, err
		}
		if !t.gso.Load() {
			return end, nil
		}
	}
	last := groups[len(groups)-1]
	return last.first + last.count, nil
}

// rxState is the receive side's own buffers when UDP_GRO is on, and what
// the last recvmmsg returned that no caller has taken yet.
type rxState struct {
	mu        sync.Mutex
	msgs      []ipv4.Message // each with one groSlot buffer and rxOOBSpace of control
	next, got int            // msgs[next:got] not yet split
	seg       segments       // the datagrams of msgs[next-1] not yet handed out
	from      netip.AddrPort // their source
}

func newRxState(n int) *rxState {
	rx := &rxState{msgs: make([]ipv4.Message, n)}
	buf := make([]byte, n*groSlot)
	oob := make([]byte, n*rxOOBSpace)
	iov := make([][]byte, n)
	for i := range rx.msgs {
		iov[i] = buf[i*groSlot : (i+1)*groSlot : (i+1)*groSlot]
		rx.msgs[i].Buffers = iov[i : i+1 : i+1]
		rx.msgs[i].OOB = oob[i*rxOOBSpace : (i+1)*rxOOBSpace : (i+1)*rxOOBSpace]
	}
	rx.seg.done = true
	return rx
}

func (t *udpTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	s, err := t.socket()
	if err != nil {
		return 0, err
	}
	if len(pkts) == 0 {
		return 0, nil
	}
	if s.gro {
		return t.readGRO(s, pkts)
	}
	b := t.batches.Get().(*batch)
	defer t.batches.Put(b)
	n := min(len(pkts), len(b.msgs))
	msgs := b.msgs[:n]
	defer b.release(n)
	for i := range msgs {
		msgs[i].Buffers = b.one[i : i+1 : i+1]
		msgs[i].OOB = nil
	}
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
				t.rxTooBig.Add(1) // oversized: not a frame of ours
				continue
			}
			if i != w {
				if m.N > len(pkts[w].Buf) {
					t.rxTooBig.Add(1) // fits its own buffer but not the slot it moves to
					continue
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

func (t *udpTransport) readGRO(s *socket, pkts []transport.Packet) (int, error) {
	rx := s.rx
	rx.mu.Lock()
	defer rx.mu.Unlock()
	for {
		if n := t.split(rx, pkts); n > 0 {
			return n, nil
		}
		got, err := s.batch.ReadBatch(rx.msgs, 0)
		if err != nil {
			return 0, t.ioError(err)
		}
		rx.next, rx.got = 0, got
		t.rxMessages.Add(uint64(got))
	}
}

// split hands out received datagrams into pkts until either runs out.
func (t *udpTransport) split(rx *rxState, pkts []transport.Packet) int {
	n := 0
	for n < len(pkts) {
		d, ok := rx.seg.next()
		if !ok {
			if rx.next == rx.got {
				break
			}
			m := &rx.msgs[rx.next]
			rx.next++
			if m.Flags&msgTrunc != 0 {
				t.rxTooBig.Add(1) // larger than 64 KiB: cannot be UDP
				continue
			}
			rx.seg.reset(m.Buffers[0][:m.N], groSize(m.OOB[:m.NN]))
			rx.from = unmapped(m.Addr)
			continue
		}
		if len(d) > len(pkts[n].Buf) {
			t.rxTooBig.Add(1)
			continue
		}
		pkts[n].N = copy(pkts[n].Buf, d)
		pkts[n].Addr = rx.from
		n++
	}
	return n
}

func unmapped(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
