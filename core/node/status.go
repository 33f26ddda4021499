package node

import (
	"net/netip"
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
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	st := Status{ID: n.id, Addr: n.bound, Peers: n.view.Len(), Mimics: n.Mimics(), Counters: n.Stats()}
	st.LoopRTT, _ = n.LoopRTT()
	st.LoopTunnels = n.loopTunnelHops()
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
