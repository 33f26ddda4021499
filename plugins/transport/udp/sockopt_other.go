//go:build !unix

package udp

import "net"

// msgTrunc is zero where recvmsg has no MSG_TRUNC flag; Windows reports an
// oversized datagram as a read error instead.
const msgTrunc = 0

// setBuffers sizes the socket buffers, best effort (capped by the kernel).
func setBuffers(c *net.UDPConn, snd, rcv int) {
	_ = c.SetWriteBuffer(snd)
	_ = c.SetReadBuffer(rcv)
}
