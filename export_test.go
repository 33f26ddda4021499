package tarzan

// TunnelHops lists the hop counts of the node's client tunnels that carry
// an application's flow (not spares), for tests.
func TunnelHops(n *Node) []int {
	var out []int
	for _, t := range n.core().Status().ClientTunnels {
		if !t.Spare {
			out = append(out, len(t.Hops))
		}
	}
	return out
}
