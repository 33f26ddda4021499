package plugincheck

import (
	"os"
	"syscall"
)

// dataPair is the seqpacket socket pair a node gives a plugin as its
// data channel (sdk/internal/datachan), both ends close-on-exec.
func dataPair() (parent, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "data-host"), os.NewFile(uintptr(fds[1]), "data-child"), nil
}
