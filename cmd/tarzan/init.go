package main

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
)

func runInit(args []string) error {
	fs := newFlags("init", "init [-dir DIR] [-listen ADDR:PORT] [-peers A,B,...]")
	dir := fs.String("dir", ".", "directory for node.toml and the identity key")
	listen := fs.String("listen", "", "transport listen address (default from node.toml defaults)")
	advertise := fs.String("advertise", "", "address other nodes reach this one at (default: the listen address)")
	peers := fs.String("peers", "", "comma-separated bootstrap peers host:port for static discovery")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(*dir, "node.toml")
	keyPath := filepath.Join(*dir, "identity.key")
	for _, p := range []string{cfgPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite it", p)
		}
	}
	cfg := config.Default()
	cfg.Node.Identity = "identity.key"
	if *listen != "" {
		ap, err := netip.ParseAddrPort(*listen)
		if err != nil {
			return fmt.Errorf("-listen: %w", err)
		}
		cfg.Transport.Listen = ap
	}
	if *advertise != "" {
		ap, err := netip.ParseAddrPort(*advertise)
		if err != nil {
			return fmt.Errorf("-advertise: %w", err)
		}
		cfg.Transport.Advertise = []netip.AddrPort{ap}
	}
	if *peers != "" {
		if cfg.Discovery.Options == nil {
			cfg.Discovery.Options = map[string]string{}
		}
		cfg.Discovery.Options["peers"] = strings.Join(strings.Fields(strings.ReplaceAll(*peers, ",", " ")), ",")
	}
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		return err
	}
	if err := id.Save(keyPath); err != nil {
		return err
	}
	if err := config.Write(cfgPath, cfg); err != nil {
		return err
	}
	fmt.Printf("created %s and %s (mode 0600)\nnode ID %s\nrun it with: tarzan node -c %s\n", cfgPath, keyPath, id.ID(), cfgPath)
	return nil
}
