//go:build !unix

package datachan

import (
	"errors"
	"runtime"
)

var errNoPair = errors.New("datachan: out-of-process plugins need Unix sockets, which " + runtime.GOOS + " builds do not have; run plugins in process")

// NewPair fails: no seqpacket Unix sockets on this platform.
func NewPair() (*Pair, error) { return nil, errNoPair }

func closeOnExec(int) {}
