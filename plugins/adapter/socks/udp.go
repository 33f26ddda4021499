package socks

// UDP ASSOCIATE (RFC 1928 §7). Each association has a UDP socket on the
// listen address for the client and up to two unconnected UDP sockets in
// the group's stack (IPv4 and IPv6). Goroutines, all owned by associate
// and ended when the control connection closes:
//
//   - up: client datagram → strip header → inner socket (names are
//     resolved through the tunnel and cached for the association);
//   - down (one per inner socket): inner datagram → add header → client.

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

const maxDatagram = 65535

type association struct {
	p      *Proxy
	g      *group
	outer  *net.UDPConn
	client netip.Addr // only datagrams from this host are relayed

	mu       sync.Mutex
	peer     netip.AddrPort // the client's UDP address, learned from its first datagram
	inner4   *gonet.UDPConn
	inner6   *gonet.UDPConn
	resolved map[string]netip.Addr
	wg       sync.WaitGroup
}

func (p *Proxy) associate(c net.Conn, key string, req destination) {
	g, err := p.acquire(key)
	if err != nil {
		c.Write(reply(repGeneralFailure, netip.AddrPort{}))
		return
	}
	defer p.release(g)

	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	outer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		c.Write(reply(repGeneralFailure, netip.AddrPort{}))
		return
	}
	if !p.track(outer) {
		return
	}
	defer p.untrack(outer)

	a := &association{p: p, g: g, outer: outer,
		client:   c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(),
		resolved: map[string]netip.Addr{}}
	// A client that names its UDP address up front gets only that one.
	if req.host == "" && req.addr.IsValid() && !req.addr.IsUnspecified() && req.port != 0 {
		a.peer = netip.AddrPortFrom(req.addr, req.port)
	}
	defer a.close()

	bnd := outer.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := c.Write(reply(repSucceeded, bnd)); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	a.wg.Add(1)
	go a.up()
	// The association lives as long as the control connection.
	var b [64]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

func (a *association) close() {
	a.outer.Close()
	a.mu.Lock()
	for _, in := range []*gonet.UDPConn{a.inner4, a.inner6} {
		if in != nil {
			in.Close()
			a.p.untrack(in)
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *association) up() {
	defer a.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := a.outer.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.client {
			continue
		}
		dst, frag, payload, err := parseUDPHeader(buf[:n])
		if err != nil || frag != 0 { // fragmentation is optional; we drop
			continue
		}
		a.mu.Lock()
		if !a.peer.IsValid() {
			a.peer = from
		}
		ok := a.peer == from
		a.mu.Unlock()
		if !ok {
			continue
		}
		to, ok := a.target(dst)
		if !ok {
			continue
		}
		inner := a.inner(to.Addr())
		if inner == nil {
			continue
		}
		inner.WriteTo(payload, net.UDPAddrFromAddrPort(to))
	}
}

// target resolves dst (through the tunnel, cached) and applies the same
// destination rules as CONNECT.
func (a *association) target(dst destination) (netip.AddrPort, bool) {
	addr := dst.addr
	if dst.host != "" {
		a.mu.Lock()
		cached, ok := a.resolved[dst.host]
		a.mu.Unlock()
		if ok {
			addr = cached
		} else {
			ctx, cancel := context.WithTimeout(a.p.ctx, a.p.opts.connectTimeout)
			addrs, rep := a.p.resolve(ctx, a.g, dst)
			cancel()
			if rep != repSucceeded {
				return netip.AddrPort{}, false
			}
			addr = addrs[0]
			a.mu.Lock()
			a.resolved[dst.host] = addr
			a.mu.Unlock()
		}
	}
	if !a.p.allowedDestination(addr) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, dst.port), true
}

// inner returns the stack socket for dst's family, opening it (and its
// down goroutine) on first use.
func (a *association) inner(dst netip.Addr) *gonet.UDPConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot, local := &a.inner4, a.g.V4
	if dst.Is6() {
		slot, local = &a.inner6, a.g.V6
	}
	if *slot != nil {
		return *slot
	}
	if !local.IsValid() {
		return nil
	}
	in, err := a.g.ListenUDP(netip.AddrPortFrom(local, 0))
	if err != nil {
		return nil
	}
	if !a.p.track(in) {
		return nil
	}
	*slot = in
	a.wg.Add(1)
	go a.down(in)
	return in
}

func (a *association) down(in *gonet.UDPConn) {
	defer a.wg.Done()
	buf := make([]byte, maxDatagram)
	const hdrRoom = 22 // RSV FRAG ATYP IPv6 PORT
	for {
		n, from, err := in.ReadFrom(buf[hdrRoom:])
		if err != nil {
			return
		}
		src, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		a.mu.Lock()
		peer := a.peer
		a.mu.Unlock()
		if !peer.IsValid() {
			continue
		}
		msg := appendUDPHeader(make([]byte, 0, hdrRoom+n), src.AddrPort())
		msg = append(msg, buf[hdrRoom:hdrRoom+n]...)
		a.outer.WriteToUDPAddrPort(msg, peer)
	}
}
