//go:build unix && !linux

package datachan

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketpair: no SOCK_CLOEXEC here, so the flag is set under the fork
// lock. Whether the kernel offers seqpacket Unix sockets varies (macOS
// does not); NewPair then fails with the kernel's error and out-of-process
// plugins are unavailable on that platform.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		return fds, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}
