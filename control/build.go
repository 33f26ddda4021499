package control

import (
	"context"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
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
