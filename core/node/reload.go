package node

import (
	"errors"
	"fmt"

	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// SetExitPolicy replaces the policy the node enforces as an exit and
// publishes a descriptor with its summary (a reload: SIGHUP). From the
// next packet on the IP service checks the new policy; peers hold the old
// summary until they next fetch the descriptor, so for a while clients
// may still choose this exit for a destination it now refuses (the exit
// answers those with ICMP unreachable, as for any refused destination).
func (n *Node) SetExitPolicy(p *exitpolicy.Policy) error {
	if p == nil {
		return errors.New("node: SetExitPolicy: nil policy")
	}
	if !n.opts.Exit {
		return errors.New("node: SetExitPolicy: the node is not an exit")
	}
	old := n.ExitPolicy()
	n.exitPolicy.Store(p)
	if err := n.publish(); err != nil {
		n.exitPolicy.Store(old)
		return fmt.Errorf("node: SetExitPolicy: %w", err)
	}
	return nil
}
