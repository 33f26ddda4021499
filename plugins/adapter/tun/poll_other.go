//go:build !linux

package tun

import "syscall"

// readyPoller is Linux-only (poll_linux.go); elsewhere a batch is what
// one read brought.
type readyPoller struct{}

func newReadyPoller(syscall.RawConn) *readyPoller { return nil }

func (p *readyPoller) ready() bool { return false }
