package node

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// Per-tunnel traffic for `tarzan status`, `tarzan tunnel list` and the
// metrics endpoint (issue 13): what each of this node's own tunnels has
// carried, how old it is, and the node's totals, open and closed tunnels
// together, with what it carried as an exit beside them.
//
// What is counted: the packets of DATA cells (what the IP service sends
// and receives through the tunnel; pings, extends and cover are not
// data) and their bytes, the packet's length inside the cell. The cost on
// the data path is a few atomic additions per packet; reading them costs
// it nothing.
//
// The counting sites, outside this file (kept to one line each):
// Tunnel.SendData and Tunnel.handleBackward (tunnel.go), noteBuild
// (linkstats.go, numbers a tunnel once built), exitData and
// ExitCircuit.Reply (api.go, the exit's side).

// tunnelTraffic is one tunnel's number, birth and DATA counters.
type tunnelTraffic struct {
	num                   atomic.Uint64 // local number once built; 0 while the first build runs
	born                  atomic.Int64  // unix nanos when first built
	bytesIn, bytesOut     atomic.Uint64
	packetsIn, packetsOut atomic.Uint64
}

// tunnelTotals are the node's sums over every tunnel it built, open or
// closed, and over every circuit that ended at it as an exit.
type tunnelTotals struct {
	seq                        atomic.Uint64 // the last tunnel number given out
	bytesIn, bytesOut          atomic.Uint64
	packetsIn, packetsOut      atomic.Uint64
	exitBytesIn, exitBytesOut  atomic.Uint64
	exitPacketsIn, exitPktsOut atomic.Uint64

	mu    sync.Mutex
	slots []*Tunnel // slot i is held by slots[i] while it is open (TunnelStat.Slot)
}

// countIn counts one DATA packet of size bytes received through t.
func (t *Tunnel) countIn(size int) {
	t.traffic.bytesIn.Add(uint64(size))
	t.traffic.packetsIn.Add(1)
	tt := &t.n.tunTotals
	tt.bytesIn.Add(uint64(size))
	tt.packetsIn.Add(1)
}

// countOut counts one DATA packet of size bytes sent through t.
func (t *Tunnel) countOut(size int) {
	t.traffic.bytesOut.Add(uint64(size))
	t.traffic.packetsOut.Add(1)
	tt := &t.n.tunTotals
	tt.bytesOut.Add(uint64(size))
	tt.packetsOut.Add(1)
}

// countExitIn and countExitOut count a DATA packet that reached this node
// as a tunnel's exit, and one it sent back.
func (n *Node) countExitIn(size int) {
	n.tunTotals.exitBytesIn.Add(uint64(size))
	n.tunTotals.exitPacketsIn.Add(1)
}

func (n *Node) countExitOut(size int) {
	n.tunTotals.exitBytesOut.Add(uint64(size))
	n.tunTotals.exitPktsOut.Add(1)
}

// numberTunnel gives a tunnel that was just built its local number and
// birth time, once: a repair keeps both.
func (n *Node) numberTunnel(t *Tunnel) {
	if t == nil || t.traffic.num.Load() != 0 {
		return
	}
	t.traffic.born.Store(n.opts.Clock.Now().UnixNano())
	t.traffic.num.Store(n.tunTotals.seq.Add(1))
}

// Number is the tunnel's local number: 1 for the first tunnel this node
// built, then counting up, never reused while the node runs. 0 before
// the tunnel's first build completed.
func (t *Tunnel) Number() uint64 { return t.traffic.num.Load() }

// TunnelStat is one open tunnel of this node, for status and metrics.
type TunnelStat struct {
	// Number is the tunnel's local number (Tunnel.Number): unique while
	// the node runs, what `tarzan tunnel` names it by.
	Number uint64
	// Slot is a small number, the lowest free among the open tunnels when
	// it was first listed, reused after the tunnel closes: a label of
	// bounded cardinality for metrics.
	Slot      int
	Hops      []identity.ID // first hop first; none while a rebuild runs
	Built     time.Time     // when its first build completed
	LastUse   time.Time     // when it last sent or received DATA
	Repairing bool
	// BytesIn, BytesOut: the packets of its DATA cells, received from and
	// sent to its last hop, in bytes and packets.
	BytesIn, BytesOut     uint64
	PacketsIn, PacketsOut uint64
}

// TunnelStats lists this node's open tunnels that have been built, by
// number.
func (n *Node) TunnelStats() []TunnelStat {
	n.mu.Lock()
	ts := make([]*Tunnel, 0, len(n.tunnels))
	for t := range n.tunnels {
		if t.traffic.num.Load() != 0 {
			ts = append(ts, t)
		}
	}
	n.mu.Unlock()
	slices.SortFunc(ts, func(a, b *Tunnel) int {
		return cmp.Compare(a.traffic.num.Load(), b.traffic.num.Load())
	})
	slots := n.tunTotals.assignSlots(ts)
	out := make([]TunnelStat, 0, len(ts))
	for i, t := range ts {
		out = append(out, t.stat(slots[i]))
	}
	return out
}

func (t *Tunnel) stat(slot int) TunnelStat {
	tr := &t.traffic
	return TunnelStat{
		Number: tr.num.Load(), Slot: slot, Hops: t.hopIDs(),
		Built: time.Unix(0, tr.born.Load()), LastUse: t.lastUse(), Repairing: t.isRepairing(),
		BytesIn: tr.bytesIn.Load(), BytesOut: tr.bytesOut.Load(),
		PacketsIn: tr.packetsIn.Load(), PacketsOut: tr.packetsOut.Load(),
	}
}

// assignSlots frees the slots of tunnels no longer open and gives each of
// ts without one the lowest free slot; it returns ts's slots.
func (tt *tunnelTotals) assignSlots(ts []*Tunnel) []int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	open := make(map[*Tunnel]bool, len(ts))
	for _, t := range ts {
		open[t] = true
	}
	for i, t := range tt.slots {
		if t != nil && (!open[t] || t.isClosed()) {
			tt.slots[i] = nil
		}
	}
	for len(tt.slots) > 0 && tt.slots[len(tt.slots)-1] == nil {
		tt.slots = tt.slots[:len(tt.slots)-1]
	}
	out := make([]int, len(ts))
	for i, t := range ts {
		slot := slices.Index(tt.slots, t)
		if slot < 0 {
			if slot = slices.Index(tt.slots, nil); slot < 0 {
				slot = len(tt.slots)
				tt.slots = append(tt.slots, nil)
			}
			tt.slots[slot] = t
		}
		out[i] = slot
	}
	return out
}

// TunnelByNumber is the open tunnel with local number num, or nil.
func (n *Node) TunnelByNumber(num uint64) *Tunnel {
	n.mu.Lock()
	defer n.mu.Unlock()
	for t := range n.tunnels {
		if num != 0 && t.traffic.num.Load() == num {
			return t
		}
	}
	return nil
}

// TunnelTotals are a node's DATA sums: over every tunnel it built, open
// or closed, and over every circuit that ended at it as an exit.
type TunnelTotals struct {
	Built                         uint64 // tunnels numbered so far
	BytesIn, BytesOut             uint64
	PacketsIn, PacketsOut         uint64
	ExitBytesIn, ExitBytesOut     uint64 // at this node as an exit: from and to the initiators
	ExitPacketsIn, ExitPacketsOut uint64
}

// TunnelTotals reports the node's sums since it started.
func (n *Node) TunnelTotals() TunnelTotals {
	tt := &n.tunTotals
	return TunnelTotals{
		Built:   tt.seq.Load(),
		BytesIn: tt.bytesIn.Load(), BytesOut: tt.bytesOut.Load(),
		PacketsIn: tt.packetsIn.Load(), PacketsOut: tt.packetsOut.Load(),
		ExitBytesIn: tt.exitBytesIn.Load(), ExitBytesOut: tt.exitBytesOut.Load(),
		ExitPacketsIn: tt.exitPacketsIn.Load(), ExitPacketsOut: tt.exitPktsOut.Load(),
	}
}
