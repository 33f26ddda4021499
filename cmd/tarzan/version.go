package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/tarzan-net/tarzan/internal/version"
)

// `tarzan version`, `tarzan --version`: release, commit, Go, protocols.
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
