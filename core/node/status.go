package node

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// MimicStatus describes one mimic link.
type MimicStatus struct {
	ID   identity.ID
	Addr netip.AddrPort
	Up   bool
	Rate float64 // frames/s set by the cover policy; 0 = unshaped
}

// Status is a snapshot for `tarzan status` and the control API.
type Status struct {
	ID       identity.ID
	Addr     netip.AddrPort
	Peers    int
	Mimics   []MimicStatus
	LinksUp  int
	Circuits int
	Tunnels  int
	Counters map[string]uint64
	// LoopRTT is the median round trip of the recent loops that returned
	// (loop cover; 0 when the node sends none or none returned yet).
	LoopRTT time.Duration
	// LoopTunnels lists the hops of the loop tunnels in use, first hop
	// first (loop cover; none when the node sends no loops). Tunnels
	// retired after an alert or at the end of their lifetime are left out.
	LoopTunnels [][]identity.ID
	// ClientTunnels are the tunnels of the IP service's client side, the
	// ones carrying applications' flows first, then the spares: scripts
	// find there the relays a transfer goes through.
	ClientTunnels []ClientTunnelStatus
}

// ClientTunnelStatus describes one tunnel of the IP service's client side.
type ClientTunnelStatus struct {
	// Hops are the tunnel's relays, first hop first (the last is the
	// exit); none while it is being rebuilt on a fresh path.
	Hops      []identity.ID
	Flow      uint64 // the isolation group it serves (0 for a spare too)
	Spare     bool   // built ahead of need, serving no group yet
	TCPFlows  int    // TCP flows it carries now (flows.go)
	Repairing bool
	Idle      time.Duration // since it last carried a packet
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	st := Status{ID: n.id, Addr: n.bound, Peers: n.view.Len(), Mimics: n.Mimics(), Counters: n.Stats()}
	st.LoopRTT, _ = n.LoopRTT()
	st.LoopTunnels = n.loopTunnelHops()
	st.ClientTunnels = n.clientTunnels()
	for _, m := range st.Mimics {
		if m.Up {
			st.LinksUp++
		}
	}
	n.mu.Lock()
	for k, r := range n.routes {
		if r.c != nil && !r.fromNext && r.c.prev == k {
			st.Circuits++
		}
	}
	st.Tunnels = len(n.tunnels)
	n.mu.Unlock()
	return st
}

// clientTunnels lists the client side's open tunnels, by group, then the
// spares.
func (n *Node) clientTunnels() []ClientTunnelStatus {
	type entry struct {
		t     *Tunnel
		flow  uint64
		spare bool
	}
	var ts []entry
	cs := &n.client
	cs.mu.Lock()
	for flow, list := range cs.byFlow {
		for _, t := range list {
			ts = append(ts, entry{t, flow, false})
		}
	}
	for _, t := range cs.spares {
		ts = append(ts, entry{t, 0, true})
	}
	cs.mu.Unlock()
	now := n.opts.Clock.Now()
	var out []ClientTunnelStatus
	for _, e := range ts {
		if e.t.isClosed() {
			continue
		}
		out = append(out, ClientTunnelStatus{
			Hops: e.t.hopIDs(), Flow: e.flow, Spare: e.spare, TCPFlows: e.t.flows.count(),
			Repairing: e.t.isRepairing(), Idle: now.Sub(e.t.lastUse()),
		})
	}
	slices.SortStableFunc(out, func(a, b ClientTunnelStatus) int {
		switch {
		case a.Spare != b.Spare:
			if a.Spare {
				return 1
			}
			return -1
		case a.Flow != b.Flow:
			return cmp.Compare(a.Flow, b.Flow)
		}
		return cmp.Compare(a.Idle, b.Idle)
	})
	return out
}
