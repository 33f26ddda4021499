package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/tarzan-net/tarzan/internal/version"
)

// `tarzan version` (also `tarzan --version`): release, commit, Go and the
// protocol versions; nodes of different protocol versions do not talk.
func runVersion(args []string) error {
	fs := newFlags("version", "version [-json]")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(version.Get())
	}
	fmt.Println(version.Get())
	return nil
}
