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

// TunnelFlows lists the isolation groups (Flow numbers) the node's client
// tunnels serve, one entry per tunnel, spares left out.
func TunnelFlows(n *Node) []uint64 {
	var out []uint64
	for _, t := range n.core().Status().ClientTunnels {
		if !t.Spare {
			out = append(out, t.Flow)
		}
	}
	return out
}

// ClientFlow is the Flow number of c's isolation group.
func ClientFlow(c *Client) uint64 {
	if c.group == nil {
		return 0
	}
	return c.group.Flow()
}
