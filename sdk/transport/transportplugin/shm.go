package transportplugin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// dataConn is one child's data channel: its socket, and the shared-memory
// rings when the child took them (see datachan's shm.go); shm == nil means
// the socket framing of doc.go.
type dataConn struct {
	sock *net.UnixConn
	shm  *datachan.Shared
	wmu  sync.Mutex // one producer at a time on the host → child ring
}

func (d *dataConn) Close() error {
	if d.shm != nil {
		d.shm.Close()
	}
	return d.sock.Close()
}

// readShm moves up to len(pkts) datagrams out of the child → host ring,
// blocking until there is at least one slot. Every slot is checked
// before use: the child is not trusted.
func (r *reader) readShm(d *dataConn, pkts []transport.Packet) (int, error) {
	n := 0
	err := d.shm.Recv(func(c *datachan.Consumer, avail int) int {
		used := 0
		for used < avail && n < len(pkts) {
			addr, data, err := datachan.Datagram(c.Slot(used))
			used++
			if err != nil {
				r.malformed.Add(1)
				continue
			}
			if r.put(&pkts[n], addr, data) {
				n++
			}
		}
		return used
	})
	return n, err
}

// writeShm copies the batch into the host → child ring, blocking while
// the ring is full (back-pressure, as a full socket did).
func (c *client) writeShm(d *dataConn, pkts []transport.Packet) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	for rest := pkts; len(rest) > 0; {
		var bad error
		k := 0
		err := d.shm.Send(func(p *datachan.Producer, free int) int {
			for k < free && k < len(rest) {
				q := rest[k]
				if q.N < 0 || q.N > datachan.SlotPayload || q.N > len(q.Buf) {
					bad = fmt.Errorf("transportplugin: datagram of %d bytes (buffer %d) cannot be sent; the limit is %d", q.N, len(q.Buf), datachan.SlotPayload)
					break
				}
				p.Put(k, q.Addr, q.Buf[:q.N])
				k++
			}
			return k
		})
		if err != nil {
			return c.shmFailed(d, err)
		}
		if bad != nil {
			return bad
		}
		rest = rest[k:]
	}
	return nil
}

// shmFailed turns a ring error into the transport's: the channel ended
// (the child died or we closed), or the child corrupted an index, in
// which case it is killed (and restarted with fresh memory).
func (c *client) shmFailed(d *dataConn, err error) error {
	if c.closed.Load() {
		return transport.ErrClosed
	}
	if errors.Is(err, datachan.ErrCorrupt) {
		c.rd.malformed.Add(1)
		c.killChild()
	}
	c.data.Drop(d)
	return fmt.Errorf("%w: %v", transport.ErrUnavailable, err)
}

// killChild ends a child that broke the data channel's rules; the
// supervisor restarts it.
func (c *client) killChild() {
	if c.sup == nil {
		return
	}
	if pid := c.sup.PID(); pid > 0 {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}

// toHostShm is the child's receive pump on shared memory: the transport
// reads straight into free ring slots, so a datagram is copied once,
// by the host, out of the ring.
func (s *server) toHostShm(t transport.Transport) {
	pkts := make([]transport.Packet, transport.BatchSize)
	for {
		var rerr error
		err := s.shm.Send(func(p *datachan.Producer, free int) int {
			k := min(free, len(pkts))
			for i := range k {
				pkts[i] = transport.Packet{Buf: datachan.Payload(p.Slot(i))}
			}
			n, err := t.ReadBatch(pkts[:k])
			if err != nil {
				rerr = err
				return 0
			}
			for i := range n {
				datachan.PutHeader(p.Slot(i), pkts[i].Addr, pkts[i].N)
			}
			s.batchesIn.Add(1)
			s.packetsIn.Add(uint64(n))
			return n
		})
		if rerr != nil {
			if !errors.Is(rerr, transport.ErrClosed) {
				s.log.Error("transport read failed; no more packets will reach the host", "err", rerr)
			}
			return
		}
		if err != nil {
			return // host gone; it kills us or we exit with our parent
		}
	}
}

// fromHostShm is the child's send pump on shared memory: WriteBatch
// sends straight from the ring's slots, which are released afterwards.
func (s *server) fromHostShm(t transport.Transport) {
	pkts := make([]transport.Packet, 0, transport.BatchSize)
	for {
		err := s.shm.Recv(func(c *datachan.Consumer, avail int) int {
			k := min(avail, cap(pkts))
			pkts = pkts[:0]
			for i := range k {
				addr, data, err := datachan.Datagram(c.Slot(i))
				if err != nil {
					s.malformed.Add(1)
					continue
				}
				pkts = append(pkts, transport.Packet{Addr: addr, Buf: data, N: len(data)})
			}
			if len(pkts) > 0 {
				s.write(t, pkts)
			}
			clear(pkts)
			return k
		})
		if err != nil {
			return
		}
	}
}
