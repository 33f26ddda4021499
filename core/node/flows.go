package node

// flowsLost is called when no flow through t's exit can continue: the
// tunnel closed, or it is being rebuilt on a fresh path (a new exit).
func (n *Node) flowsLost(t *Tunnel) {}
