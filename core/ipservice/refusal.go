package ipservice

import (
	"errors"
	"net/netip"

	"github.com/tarzan-net/tarzan/core/node"
)

// Refusals a user can hit are logged at INFO, once a minute per reason
// (ratelog.Refusal), with the reason and what to change. Destinations are
// named only by class and port: a node's log is no record of where its
// users go.

// destClass names what kind of address dst is, for a log line.
func destClass(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), a.IsLinkLocalUnicast(), !a.IsGlobalUnicast():
		return "private"
	}
	return "public"
}

// logNoTunnel says why a flow to dst got no tunnel.
func (s *Service) logNoTunnel(proto string, dst netip.AddrPort, err error) {
	v := s.n.View()
	hops, peers, domains := s.opts.TunnelHops, v.Len(), len(v.Tops())
	if hops <= 0 {
		hops = node.DefaultTunnelHops
	}
	exits, accepting := 0, 0
	for _, p := range v.All() {
		if p.Desc.Exit {
			exits++
			if s.exitAllows(p, proto, dst) {
				accepting++
			}
		}
	}
	what := []any{"proto", proto, "dest", destClass(dst.Addr()), "port", dst.Port(), "err", err}
	switch {
	case errors.Is(err, node.ErrNoPath) && domains < hops:
		s.limiter.Refused(s.log, "no-path", "no tunnel: not enough nodes. A tunnel needs hops+1 distinct /16 domains (this node's and one per hop; on one machine give each node its own 127.N.0.1); add nodes or check discovery",
			append(what, "needs_domains", hops+1, "have_domains", domains+1, "peers", peers)...)
	case exits == 0:
		s.limiter.Refused(s.log, "no-exit", "no tunnel: no exit among the peers; some node must set node.exit = true (tarzan init -exit)",
			append(what, "peers", peers)...)
	case accepting == 0:
		s.limiter.Refused(s.log, "exit-policy", "no tunnel: no exit's policy accepts this destination; default policies reject loopback and private ranges (for a test server on loopback see `tarzan init -test-server`, README \"Your first network\")",
			append(what, "exits", exits)...)
	default:
		s.limiter.Refused(s.log, "no-tunnel", "no tunnel for a destination; retried on the next packet", what...)
	}
}

// logExitRefused says, at an exit, that its policy refused a client's
// destination (counted as drop_exit_policy).
func (s *Service) logExitRefused(proto string, dst netip.AddrPort) {
	s.limiter.Refused(s.log, "exit-policy-here", "refused a destination by this exit's policy (exit.policy in node.toml; private ranges such as loopback are rejected unless a rule accepts them)",
		"proto", proto, "dest", destClass(dst.Addr()), "port", dst.Port())
}
