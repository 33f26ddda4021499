//go:build !unix

package sidebyside

import (
	"os"
	"syscall"
)

// groupAttr: no process groups on this OS.
func groupAttr() *syscall.SysProcAttr { return nil }

// killGroup kills pid alone (no children to reach here).
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
