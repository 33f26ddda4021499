package netstack

// Isolation groups. Each group owns one userspace TCP/IP stack and one
// Flow number, stable while the group lives (see the pipeline in doc.go;
// the stack is shared with the socks adapter, package stackgroup).

import (
	"fmt"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/stackgroup"
)

type group struct {
	*stackgroup.Stack
	refs int // guarded by Adapter.mu
}

func newGroup(r *stackgroup.Reader, flow uint64, o options) (*group, error) {
	s, err := stackgroup.New(r, flow, o.addresses, o.dns, o.mtu)
	if err != nil {
		return nil, fmt.Errorf("netstack: create userspace stack: %w", err)
	}
	return &group{Stack: s}, nil
}
