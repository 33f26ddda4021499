package sidebyside

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// TarzanNet is a loopback Tarzan network as `tarzan demo` starts it:
// node 1 runs SOCKS5, every other node is an exit that may reach only
// the one server.
type TarzanNet struct {
	Net *localnet.Net
	IP  *localnet.IPService
}

// StartTarzan starts count `exe node` processes under dir, with an IP
// service for server; inProcess runs every plugin inside its node;
// socksOpts are added to node 1's [adapter.options] (the socks adapter).
func StartTarzan(ctx context.Context, dir, exe string, count int, server netip.AddrPort, inProcess bool, socksOpts map[string]string, progress func(string, ...any)) (*TarzanNet, error) {
	ip, err := localnet.NewIPService(server)
	if err != nil {
		return nil, err
	}
	o := localnet.Loopback{Cover: "none", Discovery: "static", IP: ip}
	cfgs, err := o.Configs(count)
	if err != nil {
		return nil, err
	}
	for _, c := range cfgs {
		if c.Adapter.Name == "socks" {
			for k, v := range socksOpts {
				c.Adapter.Options[k] = v
			}
		}
	}
	if inProcess {
		for _, c := range cfgs {
			SetInProcess(c)
		}
	}
	nw, err := localnet.Write(dir, cfgs, localnet.NodeName)
	if err != nil {
		return nil, err
	}
	nw.Progress = progress
	if progress != nil {
		progress("starting %d Tarzan nodes in %s (plugins in process: %v)", count, dir, inProcess)
	}
	if err := nw.Start(exe); err != nil {
		nw.Stop()
		return nil, err
	}
	if err := nw.WaitJoined(ctx); err != nil {
		nw.Stop()
		return nil, err
	}
	return &TarzanNet{Net: nw, IP: ip}, nil
}

// SetInProcess makes every builtin plugin of c run inside the node.
func SetInProcess(c *config.Config) {
	for _, p := range []*config.Plugin{&c.Transport.Plugin, &c.Discovery, &c.Cover.Plugin, &c.Adapter, &c.Exit.Plugin} {
		if p.Name != "" && p.Path == "" {
			p.InProcess = true
		}
	}
}

// SOCKS is node 1's SOCKS5 address.
func (t *TarzanNet) SOCKS() netip.AddrPort { return t.IP.SOCKS }

// PIDs are the node processes (CPU accounting adds their children).
func (t *TarzanNet) PIDs() []int { return t.Net.PIDs() }

// RelayPID is node 2's process (a relay and exit).
func (t *TarzanNet) RelayPID() int { return t.Net.Nodes[1].PID() }

// BuildTunnel builds one 3-hop tunnel from node 1 through its control
// API and returns the setup time the node measured.
func (t *TarzanNet) BuildTunnel(ctx context.Context) (time.Duration, error) {
	rep, err := t.Net.Nodes[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Pings: 1})
	if err != nil {
		return 0, fmt.Errorf("building a tunnel from node 1: %w", err)
	}
	return time.Duration(rep.SetupMS * float64(time.Millisecond)), nil
}

// Stop stops every node.
func (t *TarzanNet) Stop() { t.Net.Stop() }
