//go:build unix

package sidebyside

import "syscall"

// groupAttr starts a tor in a process group of its own, so that what it
// started can be killed with it.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup SIGKILLs the process group of pid (a tor and its children).
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
