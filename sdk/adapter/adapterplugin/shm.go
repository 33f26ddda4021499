package adapterplugin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// dataConn is one child's data channel: its socket, and the shared-memory
// rings when the child took them (datachan's shm.go and flow.go); shm ==
// nil means the socket framing of doc.go.
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

// readShm moves up to len(pkts) packets out of the child → host ring,
// blocking until there is at least one slot. Every slot is checked
// before use: the child is not trusted. A packet larger than its
// destination Buf is dropped and counted, as on the socket path.
func (c *client) readShm(d *dataConn, pkts []adapter.Packet) (int, error) {
	n := 0
	err := d.shm.Recv(func(cons *datachan.Consumer, avail int) int {
		used := 0
		for used < avail && n < len(pkts) {
			flow, data, err := datachan.FlowPacket(cons.Slot(used))
			used++
			if err != nil {
				c.badSlots.Add(1)
				continue
			}
			if len(data) > len(pkts[n].Buf) {
				c.dropped.Add(1)
				continue
			}
			pkts[n].N = copy(pkts[n].Buf, data)
			pkts[n].Flow = flow
			n++
		}
		return used
	})
	return n, err
}

// writeShm copies the packets into the host → child ring, blocking while
// the ring is full (back-pressure, as a full socket did). A packet whose
// N lies outside its buffer, or that does not fit a slot (no tunnelled
// packet comes near: a cell carries at most InnerMTU-sized ones), is
// dropped and counted, as on the socket path.
func (c *client) writeShm(d *dataConn, pkts []adapter.Packet) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	done := 0
	for done < len(pkts) {
		err := d.shm.Send(func(p *datachan.Producer, free int) int {
			k := 0
			for k < free && done < len(pkts) {
				q := pkts[done]
				done++
				if q.N < 0 || q.N > datachan.SlotPayload || q.N > len(q.Buf) {
					c.malformed.Add(1)
					continue
				}
				p.PutFlow(k, q.Flow, q.Buf[:q.N])
				k++
			}
			return k
		})
		if err != nil {
			return done, c.shmFailed(d, err)
		}
	}
	return done, nil
}

// shmFailed turns a ring error into the adapter's: the channel ended (the
// child died or we closed), or the child corrupted an index, in which
// case it is killed (and restarted with fresh memory).
func (c *client) shmFailed(d *dataConn, err error) error {
	if c.closed.Load() {
		return adapter.ErrClosed
	}
	if errors.Is(err, datachan.ErrCorrupt) {
		c.badSlots.Add(1)
		c.killChild()
	}
	c.data.Drop(d)
	return fmt.Errorf("adapterplugin: %w (%v)", pluginkit.ErrUnavailable, err)
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

// toHostShm is the child's read pump on shared memory: the adapter reads
// straight into free ring slots, so a packet is copied once, by the
// host, out of the ring.
func (s *server) toHostShm(a adapter.Adapter) {
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for {
		var rerr error
		err := s.shm.Send(func(p *datachan.Producer, free int) int {
			k := min(free, len(pkts))
			for i := range k {
				pkts[i] = adapter.Packet{Buf: datachan.Payload(p.Slot(i))}
			}
			n, err := a.ReadPackets(pkts[:k])
			if err != nil {
				rerr = err
				return 0
			}
			// Slots are filled in order; a packet whose N lies outside
			// its buffer would leave a hole, so it goes out empty on
			// flow 0 (the host drops it as too short to be IP) and is
			// logged.
			for i := range n {
				q := pkts[i]
				if q.N < 0 || q.N > len(q.Buf) {
					s.log.Error("the adapter's ReadPackets returned a packet whose N lies outside its buffer; dropped", "n", q.N)
					q.N, q.Flow = 0, 0
				}
				datachan.PutFlowHeader(p.Slot(i), q.Flow, q.N)
			}
			return n
		})
		if rerr != nil {
			if !errors.Is(rerr, adapter.ErrClosed) {
				s.log.Error("adapter read failed; no more packets will reach the host", "err", rerr)
			}
			return
		}
		if err != nil {
			return // host gone; it kills us or we exit with our parent
		}
	}
}

// fromHostShm is the child's write pump on shared memory: WritePackets
// reads straight from the ring's slots, which are released afterwards.
func (s *server) fromHostShm(a adapter.Adapter) {
	pkts := make([]adapter.Packet, 0, adapter.BatchSize)
	for {
		closed := false
		err := s.shm.Recv(func(cons *datachan.Consumer, avail int) int {
			k := min(avail, cap(pkts))
			pkts = pkts[:0]
			for i := range k {
				flow, data, err := datachan.FlowPacket(cons.Slot(i))
				if err != nil {
					continue // the host wrote it; cannot happen
				}
				pkts = append(pkts, adapter.Packet{Buf: data, N: len(data), Flow: flow})
			}
			if len(pkts) > 0 {
				if _, err := a.WritePackets(pkts); errors.Is(err, adapter.ErrClosed) {
					closed = true
				}
			}
			clear(pkts)
			return k
		})
		if err != nil || closed {
			return
		}
	}
}
