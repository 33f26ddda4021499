//go:build !linux

package netns

import (
	"errors"
	"runtime"
	"syscall"
)

// Network namespaces are Linux-only. Elsewhere the package compiles (the
// binary's SOCKS client runs on darwin and windows) and Check says why
// nothing here can run (there is no /proc/self/ns/net).
var errLinuxOnly = errors.New("network namespaces are Linux-only; this is " + runtime.GOOS)

func setns(int) error                 { return errLinuxOnly }
func kill(int, syscall.Signal) error  { return errLinuxOnly }
func groupAttr() *syscall.SysProcAttr { return nil }
