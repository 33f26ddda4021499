package main

import (
	"errors"
	"os"

	"github.com/tarzan-net/tarzan/control"
)

// runTunnel is `tarzan tunnel build|ping|list|close`; control.CLI has the
// flags and output, so that cmd/tarzan stays small.
func runTunnel(args []string) error {
	if err := (&control.CLI{Out: os.Stdout, Err: os.Stderr, Dial: statusClient}).RunTunnel(args); !errors.Is(err, control.ErrUsage) {
		return err
	}
	return errUsage
}
