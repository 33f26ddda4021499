//go:build !linux

package datachan

import (
	"errors"
	"net"
)

// ShmSupported reports whether this build can offer shared memory: only
// Linux has memfd; elsewhere the socket framing is used.
const ShmSupported = false

var errNoShm = errors.New("datachan: shared memory needs Linux (memfd)")

// NewShm fails: no memfd here.
func NewShm(int) (*ShmSetup, error) { return nil, errNoShm }

func unmapMem([]byte) error { return nil }

func ringBell(c *net.UnixConn) { _, _ = c.Write([]byte{1}) }

// OpenChildShm: no shared memory on this platform.
func OpenChildShm(*net.UnixConn) (*Shared, error) { return nil, nil }
