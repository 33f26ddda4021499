// Package initcfg builds the node.toml that `tarzan init` writes from its
// role flags: a SOCKS or TUN client, an exit, gossip or static discovery.
package initcfg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
)

// DefaultSOCKS is where --socks listens when given no address.
const DefaultSOCKS = "127.0.0.1:1080"

// TestAlias is the address a local test network's clients fetch a
// loopback test server from (RFC 2544's benchmarking range; nothing is
// ever sent to it): see Roles.TestServer.
var TestAlias = netip.MustParseAddr("198.18.0.1")

// Roles are `tarzan init`'s flags.
type Roles struct {
	Listen     string   // transport listen address, IP:port
	Advertise  string   // address others reach this node at
	SOCKS      string   // "" = no SOCKS client; else its listen address
	TUN        bool     // a TUN client (Linux, root)
	Exit       bool     // act as an exit
	Bootstrap  []string // gossip discovery from these addresses
	Peers      []string // static discovery: every peer listed
	TestServer string   // exit only: let clients reach this loopback server as TestAlias
}

// Config returns the configuration for r.
func (r Roles) Config() (*config.Config, error) {
	cfg := config.Default()
	cfg.Node.Identity = "identity.key"
	var err error
	if r.Listen != "" {
		if cfg.Transport.Listen, err = netip.ParseAddrPort(r.Listen); err != nil {
			return nil, fmt.Errorf("-listen: %w", err)
		}
	}
	if r.Advertise != "" {
		ap, err := netip.ParseAddrPort(r.Advertise)
		if err != nil {
			return nil, fmt.Errorf("-advertise: %w", err)
		}
		cfg.Transport.Advertise = []netip.AddrPort{ap}
	}
	if err := r.client(cfg); err != nil {
		return nil, err
	}
	if err := r.discovery(cfg); err != nil {
		return nil, err
	}
	cfg.Node.Exit = r.Exit
	if r.TestServer != "" {
		if err := r.testServer(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.Validate()
}

func (r Roles) client(cfg *config.Config) error {
	switch {
	case r.SOCKS != "" && r.TUN:
		return errors.New("-socks and -tun: choose one client adapter")
	case r.SOCKS != "":
		if _, err := netip.ParseAddrPort(r.SOCKS); err != nil {
			return fmt.Errorf("-socks: %w", err)
		}
		cfg.Adapter.Name = "socks"
		cfg.Adapter.Options["listen"] = r.SOCKS
	case r.TUN:
		cfg.Adapter.Name = "tun"
	}
	return nil
}

func (r Roles) discovery(cfg *config.Config) error {
	list := func(flag string, addrs []string) (string, error) {
		for _, a := range addrs {
			if _, err := netip.ParseAddrPort(a); err != nil {
				return "", fmt.Errorf("-%s %q: want IP:port: %w", flag, a, err)
			}
		}
		return strings.Join(addrs, ","), nil
	}
	switch {
	case len(r.Bootstrap) > 0 && len(r.Peers) > 0:
		return errors.New("-bootstrap (gossip) and -peers (static): choose one discovery")
	case len(r.Bootstrap) > 0:
		v, err := list("bootstrap", r.Bootstrap)
		cfg.Discovery.Name = "gossip"
		cfg.Discovery.Options["bootstrap"] = v
		return err
	case len(r.Peers) > 0:
		v, err := list("peers", r.Peers)
		cfg.Discovery.Options["peers"] = v
		return err
	}
	return nil
}

// testServer lets this exit's clients reach a server on loopback, for a
// test network on one machine. The exit never dials loopback for a
// client otherwise: the default policy rejects it, and pnat refuses the
// exit host itself, because a client must not reach services that listen
// only locally. So the client asks for TestAlias, the policy accepts that
// alias and port and nothing else, and pnat dials the server for it from
// this node's own address.
func (r Roles) testServer(cfg *config.Config) error {
	if !r.Exit {
		return errors.New("-test-server needs -exit")
	}
	srv, err := netip.ParseAddrPort(r.TestServer)
	if err != nil || !srv.Addr().IsLoopback() {
		return fmt.Errorf("-test-server %q: want a loopback IP:port", r.TestServer)
	}
	cfg.Exit.Policy = []string{fmt.Sprintf("accept %s/32:%d", TestAlias, srv.Port()), "reject *:*"}
	cfg.Exit.Options["alias"] = TestAlias.String() + "=" + srv.Addr().String()
	cfg.Exit.Options["bind"] = cfg.Transport.Listen.Addr().String()
	return nil
}

// Write creates dir/node.toml and dir/identity.key (mode 0600) for cfg,
// refusing to overwrite either; it returns the new node's ID.
func Write(dir string, cfg *config.Config) (cfgPath string, id identity.ID, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", id, err
	}
	cfgPath = filepath.Join(dir, "node.toml")
	keyPath := filepath.Join(dir, "identity.key")
	for _, p := range []string{cfgPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return "", id, fmt.Errorf("%s already exists; refusing to overwrite it", p)
		}
	}
	k, err := identity.Generate(rand.Reader)
	if err != nil {
		return "", id, err
	}
	if err := k.Save(keyPath); err != nil {
		return "", id, err
	}
	return cfgPath, k.ID(), config.Write(cfgPath, cfg)
}

// SplitList splits a comma- or space-separated flag value.
func SplitList(v string) []string {
	return strings.Fields(strings.ReplaceAll(v, ",", " "))
}
