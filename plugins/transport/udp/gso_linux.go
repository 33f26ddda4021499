package udp

import (
	"encoding/binary"
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Control messages of UDP segmentation offload (udp(7)): UDP_SEGMENT on
// send carries the segment size as a uint16; UDP_GRO on receive carries
// it as an int.

var (
	txOOBSpace = unix.CmsgSpace(2)
	rxOOBSpace = unix.CmsgSpace(4)
)

// offload reports whether the socket can send UDP_SEGMENT messages and,
// if wantGRO, turns on UDP_GRO and reports whether the kernel took it.
func offload(c *net.UDPConn, wantGSO, wantGRO bool) (gso, gro bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	_ = rc.Control(func(fd uintptr) {
		if wantGSO {
			_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gso = err == nil
		}
		if wantGRO {
			gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	})
	return gso, gro
}

// putSegment writes a UDP_SEGMENT control message for size into oob
// (capacity ≥ txOOBSpace) and returns it.
func putSegment(oob []byte, size int) []byte {
	oob = oob[:txOOBSpace]
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return oob
}

// groSize returns the segment size a UDP_GRO control message in oob
// carries, or 0 (the message is one datagram).
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
		}
		oob = rest
	}
	return 0
}

// disablesGSO reports an error after which segmentation is turned off for
// good: EIO is what udp_send_skb returns when the device has no transmit
// checksum offload, which UDP_SEGMENT needs.
func disablesGSO(err error) bool { return errors.Is(err, unix.EIO) }
