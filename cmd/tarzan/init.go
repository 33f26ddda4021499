package main

import (
	"fmt"

	"github.com/tarzan-net/tarzan/host/initcfg"
)

func runInit(args []string) error {
	var r initcfg.Roles
	fs := newFlags("init", initcfg.Usage)
	dir := fs.String("dir", ".", "directory for node.toml and the identity key")
	fs.StringVar(&r.Listen, "listen", "", "transport listen address IP:PORT (default 0.0.0.0:7700)")
	fs.StringVar(&r.Advertise, "advertise", "", "address other nodes reach this one at (default: the listen address)")
	fs.Var(initcfg.SOCKSFlag{Addr: &r.SOCKS}, "socks", "a SOCKS5 client port for applications (-socks alone: "+initcfg.DefaultSOCKS+"; -socks=IP:PORT or -socks IP:PORT)")
	fs.BoolVar(&r.TUN, "tun", false, "a TUN client: route the host's traffic into tunnels (Linux, root)")
	fs.BoolVar(&r.Exit, "exit", false, "act as an exit (the default policy rejects every non-public destination)")
	bootstrap := fs.String("bootstrap", "", "gossip discovery: join through these nodes IP:PORT,... (one is enough; the first node may name itself)")
	peers := fs.String("peers", "", "static discovery: every other node IP:PORT,... (static lists do not spread)")
	fs.StringVar(&r.TestServer, "test-server", "", "with -exit, for a test network on one machine: let clients reach this loopback IP:PORT as "+initcfg.TestAlias.String())
	if err := r.Parse(fs, parseFlags, args); err != nil {
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
