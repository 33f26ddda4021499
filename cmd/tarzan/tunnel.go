package main

import (
	"errors"
	"os"

	"github.com/tarzan-net/tarzan/control"
)

// runTunnel implements `tarzan tunnel build|ping|list|close`; the flags
// and output are control.CLI's (cmd/tarzan stays small).
func runTunnel(args []string) error {
	err := (&control.CLI{Out: os.Stdout, Err: os.Stderr, Dial: statusClient}).RunTunnel(args)
	if errors.Is(err, control.ErrUsage) {
		return errUsage
	}
	return err
}
