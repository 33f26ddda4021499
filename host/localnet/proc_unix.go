//go:build unix

package localnet

import "syscall"

// groupAttr starts a node in a process group of its own, so that its
// plugin children can be killed with it.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup SIGKILLs the process group of pid (a node and its plugins).
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
