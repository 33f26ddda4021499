package ipservice

import (
	"context"
	"net/netip"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/view"
)

// exitAllows reports whether peer p is an exit whose published policy
// accepts (proto, dst). An invalid dst asks only "is it an exit".
func (s *Service) exitAllows(p *view.Peer, proto string, dst netip.AddrPort) bool {
	if !p.Desc.Exit {
		return false
	}
	if !dst.IsValid() || s.isDNSAddr(dst.Addr()) {
		return true
	}
	return ExitAllows(p, proto, dst)
}

// ExitAllows reports whether peer p is an exit whose published policy
// (view.Peer.ExitPolicy, parsed at admission) accepts proto ("tcp",
// "udp", "icmp") to dst. A peer whose policy did not parse accepts
// nothing.
func ExitAllows(p *view.Peer, proto string, dst netip.AddrPort) bool {
	if !p.Desc.Exit || p.ExitPolicy == nil {
		return false
	}
	ok, _ := p.ExitPolicy.Allows(proto, dst)
	return ok
}

// BuildExitTunnel builds a tunnel of hops hops whose last hop is an exit
// whose published policy accepts proto to dst, for a caller that sends
// on it itself (Tunnel.SendData: the red team, tests). It belongs to no
// flow: what its exit sends back goes to the client adapter under flow 0,
// and its TCP flows are reset when the exit is lost, as a spare's.
func (s *Service) BuildExitTunnel(ctx context.Context, hops int, proto string, dst netip.AddrPort) (*node.Tunnel, error) {
	it, err := s.buildTunnel(ctx, hops, func(p *view.Peer) bool { return s.exitAllows(p, proto, dst) })
	if err != nil {
		return nil, err
	}
	return it.t, nil
}
