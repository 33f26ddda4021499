package pnat

import (
	"net"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// The local-destination guard: pnat never connects a client to the exit
// host itself (loopback, unspecified, the host's own addresses) unless
// allow_loopback is set.
//
// It works at two speeds. Every packet is checked against a cached list
// of the host's addresses (isLocal: a map lookup), rescanned every
// hostScanEvery. The cache alone would leave a window: an address the
// host gains (DHCP, a new interface or container veth) would be dialled
// until the next rescan. So before every dial, and before every new echo
// flow, pnat asks the kernel how it would route the destination
// (localNow): on Linux one RTM_GETROUTE netlink query (local_linux.go),
// elsewhere, or when netlink fails, a fresh read of the interface
// addresses. What the kernel calls local is refused and added to the
// cache, so the next packets to it are refused on the fast path.
//
// Both checks also apply to every IPv4 address an IPv6 destination
// carries (exitpolicy.EmbeddedIPv4): the host's sit tunnel, or a NAT64 or
// 6to4 relay on the host, delivers 2002:7f00:1::1 or ::127.0.0.1 to the
// embedded IPv4 address.

// hostScanEvery is how often the janitor rereads the host's addresses.
// It bounds only how long the fast path lags; the dial-time check does
// not lag.
const hostScanEvery = 5 * time.Second

// maxLocalCache bounds the cached address list (see localNow).
const maxLocalCache = 4096

// isLocal is the per-packet check, against the cached address list.
func (e *Exit) isLocal(a netip.Addr) bool {
	var buf [exitpolicy.MaxEmbedded]exitpolicy.Embedded
	a = a.Unmap().WithZone("")
	emb := exitpolicy.EmbeddedIPv4(buf[:0], a)
	if quickLocal(a) {
		return true
	}
	for _, x := range emb {
		if quickLocal(x.Addr) {
			return true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.localAddrs[a] {
		return true
	}
	for _, x := range emb {
		if e.localAddrs[x.Addr] {
			return true
		}
	}
	return false
}

// quickLocal: addresses that are the host itself on every host.
func quickLocal(a netip.Addr) bool { return a.IsLoopback() || a.IsUnspecified() }

// checkDial is the dial-time guard (see the top of this file). It counts
// and returns errLocal for a destination the kernel would deliver to the
// host itself.
func (e *Exit) checkDial(dst netip.AddrPort) error {
	if e.cfg.allowLoopback {
		return nil
	}
	a := dst.Addr().Unmap().WithZone("")
	if e.isLocal(a) || e.localNow(a) {
		e.stats.rejectedLocal.Add(1)
		return errLocal
	}
	for _, x := range exitpolicy.EmbeddedIPv4(nil, a) {
		if e.localNow(x.Addr) {
			e.stats.rejectedLocal.Add(1)
			return errLocal
		}
	}
	return nil
}

// localNow asks the kernel whether it would deliver a to this host, and
// caches a positive answer.
func (e *Exit) localNow(a netip.Addr) bool {
	local, err := e.routeLocal(a)
	if err != nil {
		// No answer from the routing table: read the addresses afresh.
		addrs := e.hostAddrs()
		e.mu.Lock()
		e.localAddrs = addrs
		e.mu.Unlock()
		return addrs[a]
	}
	if local {
		e.mu.Lock()
		if e.localAddrs == nil {
			e.localAddrs = make(map[netip.Addr]bool)
		}
		// A local route can cover a whole prefix (AnyIP): cap what a
		// client can make us remember until the next rescan resets it.
		if len(e.localAddrs) < maxLocalCache {
			e.localAddrs[a] = true
		}
		e.mu.Unlock()
	}
	return local
}

// rescanHost replaces the cached address list.
func (e *Exit) rescanHost() {
	addrs := e.hostAddrs()
	e.mu.Lock()
	e.localAddrs = addrs
	e.mu.Unlock()
}

// hostAddrs lists the exit host's interface addresses.
func hostAddrs() map[netip.Addr]bool {
	out := make(map[netip.Addr]bool)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok {
				out[ip.Unmap()] = true
			}
		}
	}
	return out
}
