package main

import (
	"fmt"
	"os"

	"github.com/tarzan-net/tarzan/host/plugincheck"
)

// runValidate implements `tarzan validate`.
func runValidate(args []string) error {
	fs := newFlags("validate", "validate [-c node.toml] [-describe=false]\n\n"+plugincheck.ValidateHelp)
	cfgPath := fs.String("c", "node.toml", "configuration file")
	describe := fs.Bool("describe", true, "run pinned external plugins (only if their SHA-256 matches) to learn their options")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	summary, notes, err := plugincheck.Validate(*cfgPath, *describe)
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "warning:", n)
	}
	if err == nil {
		fmt.Println(summary)
	}
	return err
}
