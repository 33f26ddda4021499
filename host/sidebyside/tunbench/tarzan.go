package tunbench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host/localnet"
	"github.com/tarzan-net/tarzan/host/netns"
)

// Tarzan's side, the topology of scripts/lib/testbed.sh: relay/exit
// nodes n1..nN (10.i.0.1/8), a TUN client node (10.100.0.1/8) and a
// server (172.31.0.1/16), each in its own namespace with one veth to a
// bridge in a backbone namespace. The client has no route to the server
// but through its TUN device; the exits reach the server on the bridge.

const (
	tzPort      = 7700
	tzServerIP  = "172.31.0.1"
	tzServerNet = "172.31.0.0/16"
	tzTunIP     = "10.100.0.1"
	tzTunDev    = "tarzan0"
	joinWithin  = 90 * time.Second
)

type tarzanOverlay struct {
	label     string // "" is "tarzan"; the baseline build's is "tarzan-base"
	binary    string
	nodes     int  // relays/exits
	inProcess bool // every plugin inside its node
}

func (t tarzanOverlay) name() string {
	if t.label != "" {
		return t.label
	}
	return "tarzan"
}

// tzConfigs are the nodes' configurations: static discovery of every
// node, cover none, every relay an exit (pnat) that may reach exactly the
// server subnet, the last one the TUN client.
func tzConfigs(addrs []netip.AddrPort, tunState string, inProcess bool) []*config.Config {
	var peers []string
	for _, a := range addrs {
		peers = append(peers, a.String())
	}
	var cfgs []*config.Config
	for i, a := range addrs {
		cfg := config.Default()
		cfg.Node.Control = "127.0.0.1:0"
		cfg.Node.LogLevel = "info"
		cfg.Transport.Name = "udp"
		cfg.Transport.Listen = a
		cfg.Discovery.Name = "static"
		cfg.Discovery.Options = map[string]string{"peers": strings.Join(peers, ","), "interval": "2s"}
		cfg.Cover.Plugin = config.Plugin{Name: "none", Options: map[string]string{}}
		cfg.Exit.Policy = []string{"accept " + tzServerNet, "reject *:*"}
		if i == len(addrs)-1 {
			cfg.Adapter = config.Plugin{Name: "tun", Options: map[string]string{"name": tzTunDev, "state_dir": tunState}}
		} else {
			cfg.Node.Exit = true
		}
		for _, p := range []*config.Plugin{&cfg.Transport.Plugin, &cfg.Discovery, &cfg.Cover.Plugin, &cfg.Adapter, &cfg.Exit.Plugin} {
			p.InProcess = inProcess
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// topology builds the backbone with its bridge and the namespaces of
// nodes, client and server; it returns the node namespaces (client
// last) and the server's.
func (t tarzanOverlay) topology(ctx context.Context, set *netns.Set) (nodes []string, addrs []netip.AddrPort, srv string, err error) {
	bb, err := set.Add(ctx, "bb")
	if err != nil {
		return nil, nil, "", err
	}
	for _, a := range [][]string{{"-n", bb, "link", "add", "br0", "type", "bridge"}, {"-n", bb, "link", "set", "br0", "up"}} {
		if err := netns.IP(ctx, a...); err != nil {
			return nil, nil, "", err
		}
	}
	attach := func(name, prefix, route string) (string, error) {
		ns, err := set.Add(ctx, name)
		if err != nil {
			return "", err
		}
		if err := netns.Veth(ctx, ns, "eth0", prefix, bb, "p"+name, ""); err != nil {
			return "", err
		}
		if err := netns.IP(ctx, "-n", bb, "link", "set", "p"+name, "master", "br0"); err != nil {
			return "", err
		}
		if route == "" {
			return ns, nil
		}
		return ns, netns.IP(ctx, "-n", ns, "route", "add", route, "dev", "eth0")
	}
	for i := range t.nodes {
		ip := netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 1})
		ns, err := attach(fmt.Sprintf("n%d", i+1), ip.String()+"/8", tzServerNet)
		if err != nil {
			return nil, nil, "", err
		}
		// pnat answers echo requests through unprivileged ICMP sockets,
		// which a new namespace allows no group.
		if err := netns.Sysctl(ns, "net/ipv4/ping_group_range", "0 2147483647"); err != nil {
			return nil, nil, "", fmt.Errorf("allowing ping sockets in %s: %w", ns, err)
		}
		nodes, addrs = append(nodes, ns), append(addrs, netip.AddrPortFrom(ip, tzPort))
	}
	// The client: no route to the server but through its TUN.
	ns, err := attach("tun", tzTunIP+"/8", "")
	if err != nil {
		return nil, nil, "", err
	}
	nodes, addrs = append(nodes, ns), append(addrs, netip.AddrPortFrom(netip.MustParseAddr(tzTunIP), tzPort))
	srv, err = attach("srv", tzServerIP+"/16", "10.0.0.0/8")
	return nodes, addrs, srv, err
}

// up builds the topology, starts the iperf3 server and every node, and
// waits until membership converged, the TUN carries the default route
// and the server answers ping through the tunnel.
func (t tarzanOverlay) up(ctx context.Context, set *netns.Set, dir string, progress func(string, ...any)) (*running, error) {
	nses, addrs, srv, err := t.topology(ctx, set)
	if err != nil {
		return nil, err
	}
	if err := iperfServer(ctx, set, srv, dir); err != nil {
		return nil, err
	}
	names := func(i int) string {
		if i == len(nses)-1 {
			return "tun"
		}
		return fmt.Sprintf("n%d", i+1)
	}
	nw, err := localnet.Write(dir, tzConfigs(addrs, filepath.Join(dir, "tun-state"), t.inProcess), names)
	if err != nil {
		return nil, err
	}
	nw.Progress = func(f string, a ...any) { progress("tarzan: "+f, a...) }
	for i, n := range nw.Nodes {
		n.Wrap = []string{"ip", "netns", "exec", nses[i]}
		n.HTTP = nsHTTP(nses[i])
	}
	r := &running{client: nses[len(nses)-1], target: tzServerIP, pids: nw.PIDs, stop: nw.Stop}
	if err := nw.Start(t.binary); err != nil {
		return r, err
	}
	jctx, cancel := context.WithTimeout(ctx, joinWithin)
	err = nw.WaitJoined(jctx)
	cancel()
	if err != nil {
		return r, err
	}
	if err := waitRoute(ctx, r.client, 20*time.Second); err != nil {
		return r, fmt.Errorf("%w; the client's log ends:\n%s", err, nw.Nodes[len(nw.Nodes)-1].LogTail(10))
	}
	progress("tarzan: %d nodes joined in %.1f s; TUN up; waiting until %s answers through a tunnel", len(nw.Nodes), nw.JoinedIn.Seconds(), tzServerIP)
	if err := waitPing(ctx, r.client, tzServerIP, 30*time.Second); err != nil {
		return r, fmt.Errorf("%w; the client's log ends:\n%s", err, nw.Nodes[len(nw.Nodes)-1].LogTail(10))
	}
	return r, nil
}

// waitRoute waits until the client's TUN device carries the split
// default route (the tun adapter installs 0.0.0.0/1 and 128.0.0.0/1).
func waitRoute(ctx context.Context, ns string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		out, _ := exec.CommandContext(ctx, "ip", "-n", ns, "route", "show", "128.0.0.0/1").Output()
		if strings.Contains(string(out), "dev "+tzTunDev) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the TUN device %s did not get its routes within %v", tzTunDev, within)
}

// nsHTTP is an HTTP client whose connections are dialled inside ns: a
// node's control API listens on its namespace's loopback.
func nsHTTP(ns string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return netns.Dial(ctx, ns, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		},
	}
}
