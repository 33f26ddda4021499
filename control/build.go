package control

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
)

func buildTunnel(ctx context.Context, n *node.Node, req TunnelRequest) (*node.Tunnel, error) {
	if len(req.Path) == 0 {
		return n.BuildTunnel(ctx, req.Hops)
	}
	path := make([]identity.ID, len(req.Path))
	for i, h := range req.Path {
		id, err := identity.ParseID(h)
		if err != nil {
			return nil, err
		}
		path[i] = id
	}
	return n.BuildTunnelPath(ctx, path)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// checkTunnelRequest refuses what no build could satisfy, before any is
// tried: a length out of range, a hop that is no node ID, too many pings.
func checkTunnelRequest(req TunnelRequest) error {
	if req.Hops < 1 || req.Hops > onion.MaxHops || len(req.Path) > onion.MaxHops {
		return fmt.Errorf("hops %d: a tunnel has 1 to %d hops", max(req.Hops, len(req.Path)), onion.MaxHops)
	}
	if req.Pings > 100 {
		return fmt.Errorf("pings %d: at most 100 per hop", req.Pings)
	}
	for i, h := range req.Path {
		if _, err := identity.ParseID(h); err != nil {
			return fmt.Errorf("path hop %d: %w", i+1, err)
		}
	}
	return nil
}
