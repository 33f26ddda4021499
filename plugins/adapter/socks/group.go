package socks

// Isolation groups. Each group owns one userspace TCP/IP stack and one
// Flow number, stable while the group lives; a SOCKS session dials
// through its group's stack (group.Net). The stack and its packet
// pipeline are shared with the netstack adapter (package stackgroup);
// packets for unknown Flows (a group closed for idleness) are dropped.

import (
	"fmt"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/stackgroup"
)

type group struct {
	*stackgroup.Stack
	key string

	// refs and lastUsed are guarded by Proxy.mu.
	refs     int
	lastUsed time.Time
}

func newGroup(r *stackgroup.Reader, key string, flow uint64, o options) (*group, error) {
	s, err := stackgroup.New(r, flow, o.addresses, o.dns, o.mtu)
	if err != nil {
		return nil, fmt.Errorf("socks: create userspace stack: %w", err)
	}
	return &group{Stack: s, key: key}, nil
}
