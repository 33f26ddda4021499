package netns

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setns moves the calling OS thread into the network namespace fd.
func setns(fd int) error { return unix.Setns(fd, unix.CLONE_NEWNET) }

// kill sends sig to pid (a negative pid: its process group).
func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// groupAttr starts a child in a process group of its own.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
