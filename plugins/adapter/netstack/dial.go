package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Dial errors, wrapped in a *net.OpError.
var (
	// ErrNotAllowed: the destination means nothing through a tunnel
	// (loopback, unspecified, multicast, link-local, broadcast), also when
	// a name resolved to it. The core would drop its packets.
	ErrNotAllowed = errors.New("destination not allowed through a tunnel (loopback, unspecified, multicast, link-local or broadcast)")
	// ErrNoRoute: the stacks have no inner address of the destination's
	// family (for example an IPv6 destination with IPv4 addresses only).
	ErrNoRoute = errors.New("no inner address of the destination's address family")
	// ErrUnreachable: ICMP unreachable came back. The core sends it when
	// it could not build a tunnel to an exit whose policy accepts the
	// destination; exits and routers beyond them send it too.
	ErrUnreachable = errors.New("unreachable: no exit accepts the destination, or it cannot be reached from the exit")
)

// gVisor's errors for an ICMP unreachable, as gonet reports them.
var unreachableErrs = []string{
	(&tcpip.ErrHostUnreachable{}).String(),
	(&tcpip.ErrHostDown{}).String(),
	(&tcpip.ErrNetworkUnreachable{}).String(),
	(&tcpip.ErrNoNet{}).String(),
}

// unreachable wraps a dial error that means ICMP unreachable in
// ErrUnreachable, keeping the stack's own words.
func unreachable(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil && slices.Contains(unreachableErrs, op.Err.Error()) {
		op.Err = fmt.Errorf("%w (%v)", ErrUnreachable, op.Err)
	}
	return err
}

// dial resolves address (at the exit, if it is a name) and connects to
// the first of its addresses that answers, IPv4 first.
func (g *group) dial(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Err: err} }
	proto, fam, err := splitNetwork(network)
	if err != nil {
		return nil, opErr(err)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, opErr(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, opErr(fmt.Errorf("bad port %q", portStr))
	}
	addrs, err := g.resolve(ctx, host, fam)
	if err != nil {
		return nil, opErr(err)
	}
	var first error
	for i, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port))
		c, err := g.dialOne(ctx, proto, ap, len(addrs)-i)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if oe, ok := first.(*net.OpError); ok {
		return nil, oe
	}
	return nil, opErr(first)
}

// dialOne dials one address with a fair share (1/left) of ctx's time.
func (g *group) dialOne(ctx context.Context, proto string, ap netip.AddrPort, left int) (net.Conn, error) {
	if proto == "udp" {
		// No handshake: a UDP "connection" only fixes the peer.
		c, err := g.DialUDP(ap)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok && left > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/time.Duration(left)))
		defer cancel()
	}
	c, err := g.DialTCP(ctx, ap)
	if err != nil {
		return nil, unreachable(err)
	}
	return c, nil
}

// splitNetwork reads "tcp", "udp6", ... as protocol and family (0 = any).
func splitNetwork(network string) (proto string, fam int, err error) {
	switch network {
	case "tcp", "udp":
		return network, 0, nil
	case "tcp4", "udp4":
		return network[:3], 4, nil
	case "tcp6", "udp6":
		return network[:3], 6, nil
	}
	return "", 0, net.UnknownNetworkError(network)
}

// resolve returns the addresses to try for host, IPv4 first, leaving out
// families the caller or the stack cannot use and destinations that must
// never go through a tunnel. A name is looked up through the tunnel.
func (g *group) resolve(ctx context.Context, host string, fam int) ([]netip.Addr, error) {
	var found []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, fmt.Errorf("%s: zones mean nothing through a tunnel", host)
		}
		found = []netip.Addr{a.Unmap()}
	} else {
		addrs, err := g.LookupHost(ctx, host) // through the tunnel, or the group's cache
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			found = append(found, a.Unmap())
		}
	}
	var v4, v6 []netip.Addr
	why := error(&net.DNSError{Err: "no address", Name: host, IsNotFound: true})
	for _, a := range found {
		switch {
		case (fam == 4 && !a.Is4()) || (fam == 6 && !a.Is6()):
			why = &net.AddrError{Err: "no suitable address", Addr: host}
		case !Allowed(a):
			why = fmt.Errorf("%s: %w", a, ErrNotAllowed)
		case !g.HasFamily(a):
			why = fmt.Errorf("%s: %w", a, ErrNoRoute)
		case a.Is4():
			v4 = append(v4, a)
		default:
			v6 = append(v6, a)
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, why
	}
	return append(v4, v6...), nil
}

// Allowed reports whether a can be a destination through a tunnel: not
// loopback, unspecified, multicast, link-local or the IPv4 broadcast
// address. The exit enforces its own policy for everything else.
func Allowed(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
