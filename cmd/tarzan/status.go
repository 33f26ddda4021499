package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
)

func runStatus(args []string) error {
	fs := newFlags("status", "status [-c node.toml | -control ADDR [-cookie FILE]] [-json] [-v]")
	cfgPath := fs.String("c", "node.toml", "configuration file of the running node")
	addr := fs.String("control", "", "control API address, HOST:PORT or unix:PATH (default: read from the node's data directory)")
	cookie := fs.String("cookie", "", "with -control HOST:PORT: the node's control.cookie file")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("v", false, "print every counter too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := statusClient(*cfgPath, *addr, *cookie)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	st.WriteText(os.Stdout, *all)
	return nil
}

// statusClient reaches the node at addr, or the one cfgPath configures
// (its data directory holds the address and, for TCP, the cookie).
func statusClient(cfgPath, addr, cookieFile string) (*control.Client, error) {
	if addr != "" {
		c := &control.Client{Addr: addr}
		if cookieFile != "" {
			b, err := os.ReadFile(cookieFile)
			if err != nil {
				return nil, err
			}
			c.Cookie = strings.TrimSpace(string(b))
		}
		return c, nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	c, err := control.ClientForDir(cfg.Node.DataDir, nil)
	if err != nil {
		return nil, fmt.Errorf("is the node running? %w", err)
	}
	return c, nil
}
