package simnet

import (
	"net/netip"
	"time"
)

// Observation is what a global passive observer of the links learns about
// one datagram: who sent it to whom, how big it was and when it crossed
// the wire — never its content.
//
// One Observation is emitted per datagram that leaves its sender's uplink,
// at send time (from WriteBatch, in the sender's goroutine), because that
// is when the link model decides the datagram's fate and both wire times
// are known:
//
//   - Sent is when the datagram left the sender's uplink: the write time
//     plus any wait for the token bucket (Config.Bandwidth). It may lie a
//     little in the future of the WriteBatch call.
//   - Arrived is when it reaches the receiver's host: Sent + latency +
//     jitter, the time it becomes readable (its due time). It is the zero
//     time when the datagram is lost on the path (Config.Loss).
//
// Datagrams that never leave the sender (over the MTU, or dropped because
// the uplink queue is longer than MaxQueueDelay) are not observed.
// Datagrams that arrive but are then discarded by the receiving host (no
// listener, full receive queue, short read buffer) are observed with their
// Arrived time: an observer of the wire cannot tell.
//
// Observations are emitted in no particular global order: each sender
// emits its own in write order, and senders run concurrently.
type Observation struct {
	Src, Dst netip.AddrPort
	Size     int // datagram payload bytes
	Sent     time.Time
	Arrived  time.Time // zero: lost on the path
}

// Lost reports whether the datagram was lost on the path.
func (o Observation) Lost() bool { return o.Arrived.IsZero() }

// SetRecorder installs fn to be called with every Observation; nil removes
// the recorder. It may be called at any time, concurrently with traffic:
// datagrams written after it returns are reported to the new recorder.
//
// fn is called synchronously from WriteBatch, concurrently from many
// goroutines, with no simnet lock held: it must be safe for concurrent use
// and fast (it delays the sender), e.g. bin the observation under a mutex.
// With no recorder installed the cost is one atomic load per WriteBatch.
func (n *Network) SetRecorder(fn func(Observation)) {
	if fn == nil {
		n.rec.Store(nil)
		return
	}
	n.rec.Store(&fn)
}

// recorder returns the installed recorder, or nil.
func (n *Network) recorder() func(Observation) {
	if p := n.rec.Load(); p != nil {
		return *p
	}
	return nil
}
