package stackgroup

import (
	"sync"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Read is the adapters' ReadPackets: it blocks for the first packet any
// group's stack queued on out, then takes whatever else is already
// queued, returning each pooled buffer to bufs. A packet larger than the
// caller's buffer is dropped. It returns adapter.ErrClosed once closed is
// closed and nothing was read.
func Read(pkts []adapter.Packet, out <-chan Packet, closed <-chan struct{}, bufs *sync.Pool) (int, error) {
	n := 0
	for n < len(pkts) {
		var op Packet
		if n == 0 {
			select {
			case op = <-out:
			case <-closed:
				return 0, adapter.ErrClosed
			}
		} else {
			select {
			case op = <-out:
			default:
				return n, nil
			}
		}
		if op.N <= len(pkts[n].Buf) {
			pkts[n].N = copy(pkts[n].Buf, (*op.Buf)[:op.N])
			pkts[n].Flow = op.Flow
			n++
		}
		bufs.Put(op.Buf)
	}
	return n, nil
}

// Drain returns to bufs the buffers of the packets left on out, once
// every stack is closed (so no reader adds more).
func Drain(out <-chan Packet, bufs *sync.Pool) {
	for {
		select {
		case op := <-out:
			bufs.Put(op.Buf)
		default:
			return
		}
	}
}
