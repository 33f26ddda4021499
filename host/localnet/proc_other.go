//go:build !unix

package localnet

import (
	"os"
	"syscall"
)

// groupAttr: no process groups here; local networks are a Unix feature.
func groupAttr() *syscall.SysProcAttr { return nil }

// killGroup kills pid alone (its plugin children exit when their
// connection to it closes).
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
