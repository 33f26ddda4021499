//go:build linux

package tun

// A small rtnetlink client: just the link, address and route messages this
// adapter needs. It is used instead of iproute2 so the plugin has no
// run-time dependency on the ip command and gets errors as errnos.
//
// One socket is opened per adapter, in Open: a netlink socket stays bound
// to the network namespace it was created in, so later calls (SetExclude,
// Close) from any goroutine act on the adapter's namespace.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// routeProto marks the routes this adapter installs ("proto 122" in
// `ip route`), so deleting one never removes somebody else's route with
// the same destination.
const routeProto = 122

type netlink struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

func openNetlink() (*netlink, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("tun: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: netlink bind: %w", err)
	}
	return &netlink{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (nl *netlink) close() error { return unix.Close(nl.fd) }

// request sends one message and returns the payloads of the replies
// (dump) or nil after the kernel's acknowledgement.
func (nl *netlink) request(typ, flags uint16, body []byte) ([][]byte, error) {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	nl.seq++
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	ne.PutUint16(msg[4:], typ)
	ne.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:], nl.seq)
	msg = append(msg, body...)
	if err := unix.Sendto(nl.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		n, _, err := unix.Recvfrom(nl.fd, nl.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(nl.buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != nl.seq {
				continue // a late answer to an earlier request
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("tun: short netlink error")
				}
				if errno := -int32(ne.Uint32(m.Data)); errno != 0 {
					return nil, unix.Errno(errno)
				}
				return out, nil
			default:
				out = append(out, append([]byte(nil), m.Data...))
			}
		}
	}
}

// attr appends one rtattr.
func attr(b []byte, typ uint16, val []byte) []byte {
	l := unix.SizeofRtAttr + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// linkIndex returns the index of the named interface.
func (nl *netlink) linkIndex(name string) (int, error) {
	body := make([]byte, unix.SizeofIfInfomsg)
	body = attr(body, unix.IFLA_IFNAME, append([]byte(name), 0))
	replies, err := nl.request(unix.RTM_GETLINK, 0, body)
	if err != nil {
		return 0, err
	}
	if len(replies) == 0 || len(replies[0]) < unix.SizeofIfInfomsg {
		return 0, unix.ENODEV
	}
	return int(int32(binary.NativeEndian.Uint32(replies[0][4:]))), nil
}

// linkUp sets the MTU and brings the link up.
func (nl *netlink) linkUp(index, mtu int) error {
	body := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	binary.NativeEndian.PutUint32(body[8:], unix.IFF_UP)  // flags
	binary.NativeEndian.PutUint32(body[12:], unix.IFF_UP) // change
	body = attr(body, unix.IFLA_MTU, u32(uint32(mtu)))
	_, err := nl.request(unix.RTM_NEWLINK, 0, body)
	return err
}

// linkDel deletes the named interface.
func (nl *netlink) linkDel(name string) error {
	body := make([]byte, unix.SizeofIfInfomsg)
	body = attr(body, unix.IFLA_IFNAME, append([]byte(name), 0))
	_, err := nl.request(unix.RTM_DELLINK, 0, body)
	return err
}

// addr adds (add = true) or deletes an interface address.
func (nl *netlink) addr(add bool, index int, p netip.Prefix) error {
	a := p.Addr()
	body := []byte{family(a), uint8(p.Bits()), 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	if a.Is6() {
		body[2] = unix.IFA_F_NODAD // usable at once: nobody else is on a TUN
	}
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	body = attr(body, unix.IFA_LOCAL, a.AsSlice())
	body = attr(body, unix.IFA_ADDRESS, a.AsSlice())
	typ, flags := uint16(unix.RTM_DELADDR), uint16(0)
	if add {
		typ, flags = unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE
	}
	_, err := nl.request(typ, flags, body)
	return err
}

// route is a route in the main table.
type route struct {
	Dst         netip.Prefix `json:"dst"`
	Gateway     netip.Addr   `json:"gateway,omitzero"`
	OIF         int          `json:"oif,omitempty"`
	Unreachable bool         `json:"unreachable,omitempty"` // RTN_UNREACHABLE instead of unicast
	metric      uint32
	proto       uint8
}

func (r route) String() string {
	switch {
	case r.Unreachable:
		return "unreachable " + r.Dst.String()
	case r.Gateway.IsValid():
		return fmt.Sprintf("%s via %s oif %d", r.Dst, r.Gateway, r.OIF)
	}
	return fmt.Sprintf("%s oif %d", r.Dst, r.OIF)
}

// routeMsg encodes r as an rtmsg with attributes.
func routeMsg(r route) []byte {
	typ, scope := uint8(unix.RTN_UNICAST), uint8(unix.RT_SCOPE_LINK)
	if r.Gateway.IsValid() || r.Unreachable {
		scope = unix.RT_SCOPE_UNIVERSE
	}
	if r.Unreachable {
		typ = unix.RTN_UNREACHABLE
	}
	a := r.Dst.Addr()
	body := []byte{family(a), uint8(r.Dst.Bits()), 0, 0, unix.RT_TABLE_MAIN, routeProto, scope, typ, 0, 0, 0, 0}
	body = attr(body, unix.RTA_DST, a.AsSlice())
	if r.OIF != 0 && !r.Unreachable {
		body = attr(body, unix.RTA_OIF, u32(uint32(r.OIF)))
	}
	if r.Gateway.IsValid() && !r.Unreachable {
		body = attr(body, unix.RTA_GATEWAY, r.Gateway.AsSlice())
	}
	return body
}

func (nl *netlink) routeAdd(r route) error {
	_, err := nl.request(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, routeMsg(r))
	return err
}

// routeDel deletes our route to r.Dst (matched on destination, table and
// protocol, so an interface index that changed does not matter). The
// scope is RT_SCOPE_NOWHERE, the kernel's "any scope" for deletes: with 0
// (universe) it would match only global-scope routes and silently keep our
// link-scope host routes.
func (nl *netlink) routeDel(r route) error {
	a := r.Dst.Addr()
	body := []byte{family(a), uint8(r.Dst.Bits()), 0, 0, unix.RT_TABLE_MAIN, routeProto, unix.RT_SCOPE_NOWHERE, 0, 0, 0, 0, 0}
	body = attr(body, unix.RTA_DST, a.AsSlice())
	_, err := nl.request(unix.RTM_DELROUTE, 0, body)
	return err
}

// routes dumps the unicast routes of the main table for one family.
func (nl *netlink) routes(fam uint8) ([]route, error) {
	body := []byte{fam, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	replies, err := nl.request(unix.RTM_GETROUTE, unix.NLM_F_DUMP, body)
	if err != nil {
		return nil, err
	}
	var out []route
	for _, data := range replies {
		if len(data) < unix.SizeofRtMsg {
			continue
		}
		table := uint32(data[4])
		if data[7] != unix.RTN_UNICAST {
			continue
		}
		m := &syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE}, Data: data}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		r := route{proto: data[5]}
		var dst netip.Addr
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.RTA_TABLE:
				table = binary.NativeEndian.Uint32(at.Value)
			case unix.RTA_DST:
				dst, _ = netip.AddrFromSlice(at.Value)
			case unix.RTA_GATEWAY:
				r.Gateway, _ = netip.AddrFromSlice(at.Value)
			case unix.RTA_OIF:
				r.OIF = int(binary.NativeEndian.Uint32(at.Value))
			case unix.RTA_PRIORITY:
				r.metric = binary.NativeEndian.Uint32(at.Value)
			case unix.RTA_MULTIPATH:
				r.OIF, r.Gateway = firstNexthop(at.Value)
			}
		}
		if table != unix.RT_TABLE_MAIN {
			continue
		}
		if !dst.IsValid() { // a default route has no RTA_DST
			if fam == unix.AF_INET {
				dst = netip.IPv4Unspecified()
			} else {
				dst = netip.IPv6Unspecified()
			}
		}
		r.Dst = netip.PrefixFrom(dst, int(data[1]))
		out = append(out, r)
	}
	return out, nil
}

// firstNexthop reads the first rtnexthop of an RTA_MULTIPATH attribute:
// an ECMP route is followed through one of its paths.
func firstNexthop(b []byte) (oif int, gw netip.Addr) {
	const sizeofRtNexthop = 8
	if len(b) < sizeofRtNexthop {
		return 0, gw
	}
	l := int(binary.NativeEndian.Uint16(b))
	oif = int(binary.NativeEndian.Uint32(b[4:]))
	if l > len(b) || l < sizeofRtNexthop {
		return oif, gw
	}
	rest := b[sizeofRtNexthop:l]
	for len(rest) >= unix.SizeofRtAttr {
		al := int(binary.NativeEndian.Uint16(rest))
		at := binary.NativeEndian.Uint16(rest[2:])
		if al < unix.SizeofRtAttr || al > len(rest) {
			break
		}
		if at == unix.RTA_GATEWAY {
			gw, _ = netip.AddrFromSlice(rest[unix.SizeofRtAttr:al])
		}
		rest = rest[min(len(rest), (al+3)&^3):]
	}
	return oif, gw
}

// ignoreGone treats "already gone" as success when undoing.
func ignoreGone(err error) error {
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	return err
}
