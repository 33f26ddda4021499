//go:build unix

package datachan

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NewPair creates a connected seqpacket pair. Both descriptors are
// close-on-exec; exec.Cmd clears the flag on the ExtraFiles it passes.
func NewPair() (*Pair, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("datachan: socketpair: %w", err)
	}
	for _, fd := range fds {
		// Best effort: a smaller buffer still works for batches that fit.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bufBytes)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bufBytes)
	}
	host, err := fileConn(os.NewFile(uintptr(fds[0]), "tarzan-data-host"))
	if err != nil {
		unix.Close(fds[1])
		return nil, err
	}
	return &Pair{Host: host, Child: os.NewFile(uintptr(fds[1]), "tarzan-data-child")}, nil
}

func closeOnExec(fd int) { unix.CloseOnExec(fd) }
