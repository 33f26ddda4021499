package node

import (
	"net/netip"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// dropTransport (also in core/loopcover's tests, where it came from)
// loses what its node sends: the data frames to the
// address in to (set at any time; nil: none), and every packet match
// reports (nil: none).
type dropTransport struct {
	transport.Transport
	to      atomic.Pointer[netip.AddrPort]
	match   func(transport.Packet) bool
	dropped atomic.Int64
}

func (d *dropTransport) WriteBatch(pkts []transport.Packet) error {
	to := d.to.Load()
	if to == nil && d.match == nil {
		return d.Transport.WriteBatch(pkts)
	}
	keep := make([]transport.Packet, 0, len(pkts))
	for _, p := range pkts {
		if (to != nil && p.Addr == *to && p.N == link.FrameSize && p.Buf[0] == link.TypeData) || (d.match != nil && d.match(p)) {
			d.dropped.Add(1)
			continue
		}
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		return nil
	}
	return d.Transport.WriteBatch(keep)
}

// shorts names a path by its hops' short IDs.
func shorts(ids []identity.ID) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ">"
		}
		s += id.Short()
	}
	return s
}
