package ipservice

import (
	"cmp"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// ClientTunnelStatus describes one tunnel of the client side.
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

// ClientTunnels lists the client side's open tunnels, the ones carrying
// applications' flows first (by group), then the spares: scripts find
// there the relays a transfer goes through.
func (s *Service) ClientTunnels() []ClientTunnelStatus {
	type entry struct {
		t     *ipTunnel
		flow  uint64
		spare bool
	}
	var ts []entry
	cs := &s.client
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
	if s.n == nil {
		return nil
	}
	now := s.n.Clock().Now()
	var out []ClientTunnelStatus
	for _, e := range ts {
		if e.t.t.Closed() {
			continue
		}
		out = append(out, ClientTunnelStatus{
			Hops: e.t.t.HopIDs(), Flow: e.flow, Spare: e.spare, TCPFlows: e.t.flows.count(),
			Repairing: e.t.t.Repairing(), Idle: now.Sub(e.t.t.LastUse()),
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
