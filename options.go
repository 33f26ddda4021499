package tarzan

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
)

// Options configure a node started by Start. A program sets Peers, and
// Listen or Advertise so that other nodes can reach it (and usually Dir);
// every other field has a default.
type Options struct {
	// Dir is the node's data directory: its identity key (identity.key,
	// created with mode 0600 on first start; keep it, or the network
	// sees a new node) and its state. Created with mode 0700 if missing.
	// Default: tarzan/<program name> under os.UserConfigDir().
	Dir string

	// Listen is the UDP address the node's transport listens on; other
	// nodes reach it there. Default 0.0.0.0:7700, which needs Advertise.
	Listen netip.AddrPort
	// Advertise are the addresses put in the node's descriptor, for a
	// node behind NAT or listening on an unspecified address. Default: the
	// bound listen address, which works only if it is not 0.0.0.0 or ::.
	Advertise []netip.AddrPort

	// Peers are bootstrap addresses ("ip:port") of nodes already in the
	// network. Tarzan has no directory: the node learns every other node
	// from these, by gossip (or, with Discovery "static", Peers is the
	// whole list).
	Peers []netip.AddrPort
	// Discovery is "gossip" (default) or "static".
	Discovery string

	// Hops is the number of relays per tunnel, 1..4; default 3, with
	// which no single relay knows both ends of a connection.
	Hops int
	// Mimics is k, the peers this node exchanges traffic and cover with,
	// 1..32; default 6.
	Mimics int

	// Exit makes this node an exit too: other nodes' tunnels may leave
	// the network here, to servers that see this host's address. Off by
	// default.
	Exit bool
	// ExitPolicy is the exit's ordered accept/reject rules, first match
	// wins (node.toml's exit.policy). Empty: the default policy, which
	// rejects every destination that is not globally reachable unicast.
	ExitPolicy []string
	// ExitOptions are the exit adapter's options (node.toml's
	// [exit.options]: pnat's bind, alias, ...).
	ExitOptions map[string]string

	// Control is a loopback address (e.g. "127.0.0.1:0") for the HTTP
	// control API that `tarzan status` reads; "" (default) serves none.
	Control string

	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger

	// Configure, if set, has the last word on the configuration built
	// from the fields above: any node.toml setting (cover traffic,
	// transports, limits, discovery options) can be changed here.
	Configure func(*config.Config)
}

// identityFile is the identity key's name inside Options.Dir.
const identityFile = "identity.key"

// buildConfig turns o into a node configuration, creating the data
// directory and (once the configuration is known good) the identity key
// if they are missing.
func (o Options) buildConfig() (*config.Config, error) {
	dir, err := o.dir()
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Node.Identity = filepath.Join(dir, identityFile)
	cfg.Node.DataDir = dir
	if o.Control != "" {
		cfg.Node.Control = o.Control
	}
	cfg.Node.Exit = o.Exit
	if o.Listen.IsValid() {
		cfg.Transport.Listen = o.Listen
	}
	cfg.Transport.Advertise = append(cfg.Transport.Advertise, o.Advertise...)
	if o.Hops != 0 {
		cfg.Tunnels.Hops = o.Hops
	}
	if o.Mimics != 0 {
		cfg.Mimics.Count = o.Mimics
	}
	if err := o.discovery(cfg); err != nil {
		return nil, err
	}
	cfg.Exit.Policy = append(cfg.Exit.Policy, o.ExitPolicy...)
	maps.Copy(cfg.Exit.Options, o.ExitOptions)
	if o.Configure != nil {
		o.Configure(cfg)
	}
	inProcess(cfg)
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if err := ensureIdentityAt(cfg.Node.Identity); err != nil {
		return nil, err
	}
	return cfg, nil
}

// dir returns the data directory, created (0700) if missing.
func (o Options) dir() (string, error) {
	dir := o.Dir
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("tarzan: Options.Dir is empty and there is no user config directory: %w", err)
		}
		dir = filepath.Join(base, "tarzan", filepath.Base(os.Args[0]))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("tarzan: data directory: %w", err)
	}
	return filepath.Abs(dir)
}

// ensureIdentityAt creates an identity key at path (mode 0600) if there
// is none.
func ensureIdentityAt(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err // present (Load checks it later), or unreadable
	}
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		return err
	}
	if err := id.Save(path); err != nil {
		return fmt.Errorf("tarzan: creating identity key: %w", err)
	}
	return nil
}

// discovery fills the [discovery] section from Peers and Discovery.
func (o Options) discovery(cfg *config.Config) error {
	peers := make([]string, len(o.Peers))
	for i, p := range o.Peers {
		peers[i] = p.String()
	}
	switch o.Discovery {
	case "", "gossip":
		cfg.Discovery.Name = "gossip"
		if len(peers) > 0 {
			cfg.Discovery.Options["bootstrap"] = strings.Join(peers, ",")
		}
	case "static":
		cfg.Discovery.Name = "static"
		cfg.Discovery.Options["peers"] = strings.Join(peers, ",")
	default:
		return fmt.Errorf("tarzan: Options.Discovery %q: want \"gossip\" or \"static\"", o.Discovery)
	}
	return nil
}

// inProcess runs every builtin plugin inside this process: the program
// embedding Tarzan is not the tarzan binary, so it cannot serve them as
// children. External plugins (with a path) still run as their own
// executables.
func inProcess(cfg *config.Config) {
	for _, p := range []*config.Plugin{&cfg.Transport.Plugin, &cfg.Discovery, &cfg.Cover.Plugin, &cfg.Exit.Plugin} {
		if p.Path == "" {
			p.InProcess = true
		}
	}
}

// checkConfig refuses what an embedded node cannot run.
func checkConfig(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("tarzan: %w", err)
	}
	if l := cfg.Transport.Listen; l.Addr().IsUnspecified() && len(cfg.Transport.Advertise) == 0 {
		return fmt.Errorf("tarzan: %s: the transport listens on %v, which other nodes cannot reach: set Options.Advertise (transport.advertise) to the address they reach this node at, or listen on that address", configName(cfg), l)
	}
	if cfg.Adapter.Name != "" || cfg.Adapter.Path != "" {
		return fmt.Errorf("tarzan: %s: [adapter] selects client adapter %q; an embedded node's applications dial in process (Node.Dial), so remove the [adapter] section", configName(cfg), cfg.Adapter.Name)
	}
	if len(cfg.Transport.Extra) > 0 {
		// Extra transports are opened with default options and no
		// in-process switch: they would need the tarzan binary.
		for _, e := range cfg.Transport.Extra {
			return fmt.Errorf("tarzan: %s: transport.extra %q cannot run in an embedded node (extra transports are served by the tarzan binary)", configName(cfg), e.Name)
		}
	}
	return nil
}

func configName(cfg *config.Config) string {
	if cfg.File != "" {
		return cfg.File
	}
	return "configuration"
}
