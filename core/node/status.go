package node

import (
	"net/netip"

	"github.com/tarzan-net/tarzan/core/identity"
)

// MimicStatus describes one mimic link.
type MimicStatus struct {
	ID   identity.ID
	Addr netip.AddrPort
	Up   bool
	Rate float64 // frames/s set by the cover policy; 0 = unshaped
}

// Status is a snapshot of the engine for `tarzan status` and the control
// API; the IP service and loop cover report their own (core/ipservice,
// core/loopcover), and the control API shows them side by side.
type Status struct {
	ID       identity.ID
	Addr     netip.AddrPort
	Peers    int
	Mimics   []MimicStatus
	LinksUp  int
	Circuits int
	Tunnels  int
	Counters map[string]uint64
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	st := Status{ID: n.id, Addr: n.bound, Peers: n.view.Len(), Mimics: n.Mimics(), Counters: n.Stats()}
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
