package tarzan

// TunnelHops is the length of the node's longest client tunnel that
// carries an application's flow (spares left out; a tunnel being rebuilt
// on a fresh path has no hops yet), for tests: 0 if there is none.
func TunnelHops(n *Node) int {
	longest := 0
	for _, t := range n.h.IP().ClientTunnels() {
		if !t.Spare {
			longest = max(longest, len(t.Hops))
		}
	}
	return longest
}

// TunnelFlows lists the isolation groups (Flow numbers) the node's client
// tunnels serve, one entry per tunnel, spares left out.
func TunnelFlows(n *Node) []uint64 {
	var out []uint64
	for _, t := range n.h.IP().ClientTunnels() {
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
