package tarzan

import (
	"context"
	"fmt"
	"time"
)

// Ready waits until the node can build tunnels: it knows at least as
// many peers as a tunnel has hops and at least one of its mimic links is
// up. It returns nil then, ErrClosed if the node stopped, or ctx's error
// with what was still missing. Dials call it first, so a program need
// not; it is for a program that wants to know when the network is there.
func (n *Node) Ready(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if n.closed() {
			return ErrClosed
		}
		why := n.notReady()
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: not ready: %s", ctx.Err(), why)
		case <-n.Done():
			return ErrClosed
		case <-t.C:
		}
	}
}

// notReady says why the node cannot build a tunnel yet, or "".
func (n *Node) notReady() string {
	st := n.Status()
	switch {
	case st.Peers < n.hops:
		return fmt.Sprintf("the node knows %d other nodes and a %d-hop tunnel needs %d (are Options.Peers reachable?)", st.Peers, n.hops, n.hops)
	case st.LinksUp == 0:
		return fmt.Sprintf("none of the node's mimic links is up yet (it knows %d peers)", st.Peers)
	}
	return ""
}

func (n *Node) closed() bool {
	select {
	case <-n.Done():
		return true
	default:
		return false
	}
}
