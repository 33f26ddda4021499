package pnat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The exit dials out with ordinary sockets. Two options shape those dials:
//
//   - bind: the local address outgoing connections use, for a host with
//     several addresses (or a test network on loopback, where every node
//     is its own 127.N.0.1 and the server must see which exit it was).
//   - alias: "A=B,..." — a connection the policy accepted to A is made to
//     B instead. It exists for test networks whose "Internet" is a server
//     on loopback: clients' userspace stacks rightly refuse loopback
//     addresses, so they ask for an alias (e.g. in 198.18.0.0/15, the
//     benchmarking range) and the exit dials the loopback server. The
//     policy is checked against A, as the client asked for it.

func parseAlias(v string) (map[netip.Addr]netip.Addr, error) {
	out := map[netip.Addr]netip.Addr{}
	for _, pair := range strings.Split(v, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want FROM=TO", pair)
		}
		a, err := netip.ParseAddr(strings.TrimSpace(from))
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(strings.TrimSpace(to))
		if err != nil {
			return nil, err
		}
		out[a.Unmap()] = b.Unmap()
	}
	return out, nil
}

// newDialer returns the dial function for the options.
func newDialer(bind netip.Addr, alias map[netip.Addr]netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	tcp, udp := &net.Dialer{}, &net.Dialer{}
	if bind.IsValid() {
		tcp.LocalAddr = &net.TCPAddr{IP: bind.AsSlice()}
		udp.LocalAddr = &net.UDPAddr{IP: bind.AsSlice()}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			if to, ok := alias[ap.Addr().Unmap()]; ok {
				addr = netip.AddrPortFrom(to, ap.Port()).String()
			}
		}
		if strings.HasPrefix(network, "udp") {
			return udp.DialContext(ctx, network, addr)
		}
		return tcp.DialContext(ctx, network, addr)
	}
}
