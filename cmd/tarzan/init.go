package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/tarzan-net/tarzan/host/initcfg"
)

const initUsage = `init [-dir DIR] [-listen IP:PORT] [-socks [IP:PORT] | -tun] [-exit]
            [-bootstrap IP:PORT,... | -peers IP:PORT,...]

Writes DIR/node.toml and an identity key for one of the common roles.

A 3-hop tunnel needs at least FOUR nodes in four distinct /16 domains
(a client plus three others; a tunnel never uses two hops of one /16, and
the client is not one of its own hops). With fewer, tunnels fail with
"no eligible hop N" and the node says so at INFO. To try it on one
machine, give each node its own 127.N.0.1 (README "Your first network").
`

// socksFlag is -socks with an optional address: "-socks" alone listens on
// initcfg.DefaultSOCKS.
type socksFlag struct{ addr *string }

func (s socksFlag) String() string {
	if s.addr == nil {
		return ""
	}
	return *s.addr
}
func (s socksFlag) IsBoolFlag() bool { return true }
func (s socksFlag) Set(v string) error {
	if v == "true" {
		v = initcfg.DefaultSOCKS
	}
	if v != "false" {
		*s.addr = v
	}
	return nil
}

func runInit(args []string) error {
	var r initcfg.Roles
	fs := newFlags("init", initUsage)
	dir := fs.String("dir", ".", "directory for node.toml and the identity key")
	fs.StringVar(&r.Listen, "listen", "", "transport listen address IP:PORT (default 0.0.0.0:7700)")
	fs.StringVar(&r.Advertise, "advertise", "", "address other nodes reach this one at (default: the listen address)")
	fs.Var(socksFlag{&r.SOCKS}, "socks", "a SOCKS5 client port for applications (-socks alone: "+initcfg.DefaultSOCKS+"; -socks=IP:PORT or -socks IP:PORT)")
	fs.BoolVar(&r.TUN, "tun", false, "a TUN client: route the host's traffic into tunnels (Linux, root)")
	fs.BoolVar(&r.Exit, "exit", false, "act as an exit (the default policy rejects every non-public destination)")
	bootstrap := fs.String("bootstrap", "", "gossip discovery: join through these nodes IP:PORT,... (one is enough; the first node may name itself)")
	peers := fs.String("peers", "", "static discovery: every other node IP:PORT,... (static lists do not spread)")
	fs.StringVar(&r.TestServer, "test-server", "", "with -exit, for a test network on one machine: let clients reach this loopback IP:PORT as "+initcfg.TestAlias.String())
	if err := parseInitFlags(fs, args, &r); err != nil {
		return err
	}
	r.Bootstrap, r.Peers = initcfg.SplitList(*bootstrap), initcfg.SplitList(*peers)
	cfg, err := r.Config()
	if err != nil {
		return err
	}
	path, id, err := initcfg.Write(*dir, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("created %s and an identity key (mode 0600)\nnode ID %s\nrun it with: tarzan node -c %s\n", path, id, path)
	return nil
}

// parseInitFlags parses args, taking "-socks IP:PORT" (a boolean flag
// followed by its optional address) as "-socks=IP:PORT".
func parseInitFlags(fs *flag.FlagSet, args []string, r *initcfg.Roles) error {
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return nil
		}
		done := len(args) - len(rest)
		if done == 0 || strings.TrimLeft(args[done-1], "-") != "socks" {
			return fmt.Errorf("unexpected argument %q", rest[0])
		}
		r.SOCKS, args = rest[0], rest[1:]
	}
}
