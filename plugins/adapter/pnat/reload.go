package pnat

import (
	"errors"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// reloaded holds the exit policy a reload (SIGHUP) handed the adapter;
// until one arrives the policy of Open (cfg.policy) applies.
type reloaded struct {
	p atomic.Pointer[exitpolicy.Policy]
}

// policy is the exit policy in force, read on every packet.
func (e *Exit) policy() *exitpolicy.Policy {
	if p := e.reload.p.Load(); p != nil {
		return p
	}
	return e.cfg.policy
}

// SetExitPolicy takes the node's reloaded exit policy (adapter.PolicyUpdater).
// The deprecated option "policy" overrides the node's policy at this
// adapter, so with it set a reload cannot change what pnat enforces: that
// is refused with an error that says so.
func (e *Exit) SetExitPolicy(p *exitpolicy.Policy) error {
	if p == nil {
		return errors.New("pnat: SetExitPolicy: nil policy")
	}
	e.mu.Lock()
	deprecated := e.cfg.policySet
	e.mu.Unlock()
	if deprecated {
		return errors.New("pnat: the adapter option \"policy\" overrides the node's exit policy; remove it from [exit.options] so that a reload applies exit.policy")
	}
	e.reload.p.Store(p)
	return nil
}

var _ adapter.PolicyUpdater = (*Exit)(nil)
