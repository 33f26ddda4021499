//go:build !linux

package udp

import "net"

// Without Linux's UDP_SEGMENT and UDP_GRO every datagram is its own message.

const (
	txOOBSpace = 0
	rxOOBSpace = 0
)

func offload(*net.UDPConn, bool, bool) (gso, gro bool) { return false, false }

func putSegment(oob []byte, _ int) []byte { return oob[:0] }

func groSize([]byte) int { return 0 }

func disablesGSO(error) bool { return false }
