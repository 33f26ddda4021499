package node

import (
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/mimic"
)

// mimicTable returns the mimic table for the current view and epoch,
// rebuilding it when either changed. Every node computes the same table
// from (nearly) the same view, which is what makes mimicry verifiable.
func (n *Node) mimicTable() *mimic.Table {
	now := n.opts.Clock.Now()
	epoch := mimic.Epoch(now, n.opts.EpochLength)
	version := n.view.Version()
	n.mimicMu.Lock()
	defer n.mimicMu.Unlock()
	if n.viewSeen != version {
		n.viewSeen, n.viewSeenAt = version, now
	}
	// With a rebuild interval, a table for an older view is kept while
	// the view keeps changing, but not once it has settled.
	settle := n.opts.MimicSettleTime
	if settle == 0 {
		settle = 2 * n.opts.MaintenanceInterval
	}
	settled := now.Sub(n.viewSeenAt) >= settle
	if n.table != nil && n.table.Epoch() == epoch &&
		(n.tableAt == version || (!settled && now.Sub(n.tableBuilt) < n.opts.MimicRebuildInterval)) {
		return n.table
	}
	self := mimic.Member{ID: n.id, Addr: n.bound.Addr()}
	n.table = n.opts.MimicTable(n.view.Members(self), epoch, n.opts.MimicCount)
	n.tableAt, n.tableBuilt = version, now
	return n.table
}

// isMimic reports whether id is one of our mimics right now.
func (n *Node) isMimic(id identity.ID) bool {
	return n.mimicTable().AreMimics(n.id, id)
}

// mimicSet is our current mimics.
func (n *Node) mimicSet() map[identity.ID]struct{} {
	out := map[identity.ID]struct{}{}
	for _, m := range n.mimicTable().Mimics(n.id) {
		out[identity.ID(m)] = struct{}{}
	}
	return out
}

// Mimics lists our current mimics and whether each link is up.
func (n *Node) Mimics() []MimicStatus {
	var out []MimicStatus
	for _, m := range n.mimicTable().Mimics(n.id) {
		id := identity.ID(m)
		st := MimicStatus{ID: id}
		if p, ok := n.view.Get(id); ok {
			st.Addr = p.Addr
		}
		if l := n.link(id, false); l != nil {
			st.Up = l.up()
			st.Rate = l.getRate()
		}
		out = append(out, st)
	}
	return out
}
