package redteam

import (
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
)

// linked reports whether a has a live mimic link to b.
func linked(a *node.Node, b identity.ID) bool {
	for _, m := range a.Mimics() {
		if m.ID == b && m.Up {
			return true
		}
	}
	return false
}

// chain finds distinct nodes i0, i1, ..., i(n-1) of the network, each with
// a live link to the next, such that ok accepts the chain; nil if none.
func chain(nt *Net, n int, ok func(idx []int) bool) []int {
	var walk func(idx []int) []int
	walk = func(idx []int) []int {
		if len(idx) == n {
			if ok == nil || ok(idx) {
				return append([]int(nil), idx...)
			}
			return nil
		}
		for j := range nt.Nodes {
			used := false
			for _, i := range idx {
				used = used || i == j
			}
			if used || (len(idx) > 0 && !linked(nt.Nodes[idx[len(idx)-1]], nt.Nodes[j].ID())) {
				continue
			}
			if got := walk(append(idx, j)); got != nil {
				return got
			}
		}
		return nil
	}
	return walk(nil)
}

func ids(nt *Net, idx []int) []identity.ID {
	out := make([]identity.ID, len(idx))
	for i, j := range idx {
		out[i] = nt.Nodes[j].ID()
	}
	return out
}
