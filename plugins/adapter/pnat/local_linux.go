package pnat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// routeIsLocal asks the kernel's routing table, as `ip route get A` does,
// whether a packet to a would be delivered to this host: a route of type
// local, broadcast or anycast. "No route" (and unreachable or prohibit
// routes) is an answer, not local; any other failure is an error and the
// caller falls back to reading the interface addresses.
//
// One netlink socket per query keeps this free of shared state; it costs a
// few system calls, once per dial.
func routeIsLocal(a netip.Addr) (bool, error) {
	a = a.Unmap().WithZone("")
	family, bits := syscall.AF_INET, 32
	if a.Is6() {
		family, bits = syscall.AF_INET6, 128
	} else if !a.Is4() {
		return false, errors.New("pnat: route lookup of an invalid address")
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return false, fmt.Errorf("pnat: netlink socket: %w", err)
	}
	defer syscall.Close(fd)
	// Never wait long on the kernel: a second, then fall back.
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return false, fmt.Errorf("pnat: netlink timeout: %w", err)
	}
	kernel := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return false, fmt.Errorf("pnat: netlink bind: %w", err)
	}
	const seq = 1
	if err := syscall.Sendto(fd, routeRequest(a, family, bits, seq), 0, kernel); err != nil {
		return false, fmt.Errorf("pnat: netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return false, fmt.Errorf("pnat: netlink receive: %w", err)
		}
		if nl, ok := from.(*syscall.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // only the kernel answers
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return false, fmt.Errorf("pnat: netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case syscall.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return false, errors.New("pnat: short netlink error")
				}
				switch errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data))); errno {
				case syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.EACCES:
					return false, nil // no route, unreachable or prohibit: not delivered here
				default:
					return false, fmt.Errorf("pnat: route lookup of %s: %w", a, errno)
				}
			case syscall.RTM_NEWROUTE:
				if len(m.Data) < syscall.SizeofRtMsg {
					return false, errors.New("pnat: short route message")
				}
				switch m.Data[7] { // struct rtmsg's rtm_type
				case syscall.RTN_LOCAL, syscall.RTN_BROADCAST, syscall.RTN_ANYCAST:
					return true, nil
				}
				return false, nil
			}
		}
	}
}

// routeRequest builds an RTM_GETROUTE message for the single address a.
func routeRequest(a netip.Addr, family, bits int, seq uint32) []byte {
	addr := a.AsSlice()
	attrLen := syscall.SizeofRtAttr + len(addr)
	total := syscall.NLMSG_HDRLEN + syscall.SizeofRtMsg + (attrLen+syscall.RTA_ALIGNTO-1)&^(syscall.RTA_ALIGNTO-1)
	b := make([]byte, total)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(total))
	ne.PutUint16(b[4:], syscall.RTM_GETROUTE)
	ne.PutUint16(b[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	rt := b[syscall.NLMSG_HDRLEN:]
	rt[0] = byte(family) // rtm_family
	rt[1] = byte(bits)   // rtm_dst_len
	at := rt[syscall.SizeofRtMsg:]
	ne.PutUint16(at[0:], uint16(attrLen))
	ne.PutUint16(at[2:], syscall.RTA_DST)
	copy(at[syscall.SizeofRtAttr:], addr)
	return b
}
