//go:build unix && !linux

package udp

import (
	"net"

	"golang.org/x/sys/unix"
)

const msgTrunc = unix.MSG_TRUNC

// setBuffers sizes the socket buffers, best effort (capped by the kernel).
func setBuffers(c *net.UDPConn, snd, rcv int) {
	_ = c.SetWriteBuffer(snd)
	_ = c.SetReadBuffer(rcv)
}
