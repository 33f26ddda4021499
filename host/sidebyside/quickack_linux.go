package sidebyside

import (
	"net"
	"syscall"
)

// quickAck asks the kernel to acknowledge what c receives at once
// (TCP_QUICKACK; the kernel may drop back to delayed ACKs, so it is set
// again before every read).
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
