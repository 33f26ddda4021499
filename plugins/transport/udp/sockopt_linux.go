package udp

import (
	"net"

	"golang.org/x/sys/unix"
)

const msgTrunc = unix.MSG_TRUNC

// setBuffers sizes the socket buffers, best effort. SO_*BUFFORCE ignores
// net.core.{w,r}mem_max but needs CAP_NET_ADMIN; without it fall back to
// the capped SO_*BUF. Failure only costs throughput, so it is not an error.
func setBuffers(c *net.UDPConn, snd, rcv int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, snd) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, snd)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcv) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcv)
		}
	})
}
