package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/identity"
)

// demoResult is what `tarzan demo --json` prints.
type demoResult struct {
	Nodes             int            `json:"nodes"`
	MembershipSeconds float64        `json:"membership_seconds"`
	Tunnels           []demoTunnel   `json:"tunnels"`
	PluginChildren    map[string]int `json:"plugin_children"` // node short ID → plugin child processes seen
	Fetch             *fetchResult   `json:"fetch,omitempty"`
	Dir               string         `json:"dir,omitempty"`
}

// demoTunnel is a tunnel report plus the demo's own check that every
// consecutive pair of hops (starting from the source) are mimics, as each
// hop itself reports them.
type demoTunnel struct {
	control.TunnelReply
	MimicChainOK bool `json:"mimic_chain_ok"`
}

type demoNode struct {
	extra  []config.ExtraTransport
	dir    string
	id     identity.ID
	addr   netip.AddrPort
	cmd    *exec.Cmd
	client *control.Client
}

func runDemo(args []string) error {
	fs := newFlags("demo", "demo [-nodes 12] [-tunnels 3] [-hops 3] [-json]")
	nodes := fs.Int("nodes", 12, "node processes to start (each on its own 127.N.0.1, so in its own /16)")
	tunnels := fs.Int("tunnels", 3, "tunnels to build from the first node")
	hops := fs.Int("hops", config.Default().Tunnels.Hops, "hops per tunnel")
	pings := fs.Int("pings", 5, "pings per hop (the median is reported)")
	coverName := fs.String("cover", "none", "cover policy for every node (none, constant)")
	discName := fs.String("discovery", "gossip", "how nodes find each other: gossip (from one bootstrap address) or static (every address listed)")
	transportName := fs.String("transport", "udp", "transport of every node: udp, dtls, kcp, or mixed (each node a different set; all share udp)")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout")
	keep := fs.Bool("keep", false, "keep the demo directory (configs, keys, logs) afterwards")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	fetchSize := fs.Int("fetch-size", 4<<20, "bytes of the file fetched through SOCKS5 over a tunnel (0: no fetch)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *nodes < *hops+1 || *nodes > 200 {
		return fmt.Errorf("-nodes must be between hops+1 and 200")
	}
	progress := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "tarzan-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var ip *demoIP
	var server *demoServer
	if *fetchSize > 0 {
		if server, err = startDemoServer(*fetchSize); err != nil {
			return err
		}
		defer server.close()
		client := netip.AddrFrom4([4]byte{127, 1, 0, 1})
		port, err := freeTCPPort(client)
		if err != nil {
			return err
		}
		ip = &demoIP{socks: netip.AddrPortFrom(client, port), server: server.addr,
			alias: netip.AddrPortFrom(demoAlias, server.addr.Port())}
	}
	switch *transportName {
	case "udp", "dtls", "kcp", "mixed":
	default:
		return fmt.Errorf("-transport %q: want udp, dtls, kcp or mixed", *transportName)
	}
	ns, err := writeDemoNet(dir, *nodes, demoOptions{cover: *coverName, transport: *transportName, ip: ip, discovery: *discName})
	if err != nil {
		return err
	}
	defer stopDemoNodes(ns)
	progress("starting %d nodes in %s", len(ns), dir)
	if err := launchNodes(exe, ns); err != nil {
		return err
	}
	start := time.Now()
	if err := waitControl(ctx, ns, progress); err != nil {
		return err
	}
	if err := waitMembership(ctx, ns, progress); err != nil {
		return err
	}
	res := demoResult{Nodes: len(ns), MembershipSeconds: time.Since(start).Seconds(), PluginChildren: map[string]int{}}
	for _, n := range ns {
		res.PluginChildren[n.id.Short()] = countChildren(n.cmd.Process.Pid)
	}
	for i := 0; i < *tunnels; i++ {
		progress("building tunnel %d/%d from %s", i+1, *tunnels, ns[0].id.Short())
		var rep *control.TunnelReply
		for attempt := 0; ; attempt++ {
			rep, err = ns[0].client.Tunnel(ctx, control.TunnelRequest{Hops: *hops, Pings: *pings})
			if err == nil || attempt >= 3 || ctx.Err() != nil {
				break
			}
			progress("  retrying: %v", err)
		}
		if err != nil {
			return fmt.Errorf("building tunnel %d: %w (logs in %s; rerun with -keep to inspect)", i+1, err, dir)
		}
		res.Tunnels = append(res.Tunnels, demoTunnel{TunnelReply: *rep, MimicChainOK: mimicChain(ctx, ns, rep)})
	}
	if ip != nil {
		progress("fetching %d bytes from %s through SOCKS5 %s over a %d-hop tunnel", *fetchSize, server.addr, ip.socks, *hops)
		var f *fetchResult
		for attempt := 0; ; attempt++ {
			f, err = fetchViaSOCKS(ctx, ip.socks, server, ip.alias)
			if err == nil || attempt >= 2 || ctx.Err() != nil {
				break
			}
			progress("  retrying: %v", err)
		}
		if err != nil {
			return fmt.Errorf("%w (logs in %s; rerun with -keep to inspect)", err, dir)
		}
		f.ClientAddr = ns[0].addr.Addr().String()
		res.Fetch = f
	}
	if *keep {
		res.Dir = dir
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%d nodes joined and linked to their mimics in %.1f s\n", res.Nodes, res.MembershipSeconds)
	for i, t := range res.Tunnels {
		fmt.Printf("\ntunnel %d: setup %.2f ms, consecutive hops mutual mimics: %v\n", i+1, t.SetupMS, t.MimicChainOK)
		fmt.Printf("  %-4s %-9s %-18s %-15s %s\n", "hop", "id", "addr", "domain", "rtt (median)")
		for j, h := range t.Hops {
			fmt.Printf("  %-4d %-9s %-18s %-15s %.3f ms\n", j+1, h.ID, h.Addr, h.Domain, h.RTTMS)
		}
	}
	if f := res.Fetch; f != nil {
		fmt.Printf("\nfetched %s through SOCKS5: %d bytes in %.2f s (%.1f Mbit/s), sha256 match: %v\n", f.URL, f.Bytes, f.Seconds, f.MBitPerSec, f.SHA256Match)
		fmt.Printf("the server saw %s (an exit); the client is %s\n", f.ServerSaw, f.ClientAddr)
	}
	fmt.Printf("\nplugin child processes per node: %v\n", res.PluginChildren)
	return nil
}

// mimicChain asks each node on the path for its mimics and checks that the
// next hop is among them.
func mimicChain(ctx context.Context, ns []*demoNode, rep *control.TunnelReply) bool {
	byShort := map[string]*demoNode{}
	for _, n := range ns {
		byShort[n.id.Short()] = n
	}
	prev := ns[0]
	for _, h := range rep.Hops {
		st, err := prev.client.Status(ctx)
		if err != nil {
			return false
		}
		found := false
		for _, m := range st.Mimics {
			found = found || m.ID == h.ID
		}
		if !found {
			return false
		}
		if prev = byShort[h.ID]; prev == nil {
			return false
		}
	}
	return true
}

// launchNodes starts one `tarzan node` process per node, in its own
// process group, logging to node.log in its directory.
func launchNodes(exe string, ns []*demoNode) error {
	for _, n := range ns {
		logf, err := os.Create(filepath.Join(n.dir, "node.log"))
		if err != nil {
			return err
		}
		n.cmd = exec.Command(exe, "node", "-c", filepath.Join(n.dir, "node.toml"))
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = n.cmd.Start()
		logf.Close()
		if err != nil {
			return fmt.Errorf("starting node %s: %w", n.id.Short(), err)
		}
	}
	return nil
}

// writeDemoConfigs creates one directory, key and node.toml per node. Node
// i listens on 127.i.0.1, so every node is alone in its /16 domain.
func writeDemoConfigs(dir string, count int, coverName string) ([]*demoNode, error) {
	return writeDemoNet(dir, count, demoOptions{cover: coverName})
}

// demoOptions shape a demo network.
type demoOptions struct {
	cover     string
	transport string  // udp, dtls, kcp, or mixed; "" = udp
	ip        *demoIP // nil: no IP service
	discovery string  // static (every address listed) or gossip (one bootstrap address)
}

// demoTransports returns node i's transports in preference order. In a
// mixed network every node also runs udp, so any two share a transport,
// while pairs of dtls or kcp nodes use those.
func demoTransports(mode string, i int) []string {
	switch mode {
	case "", "udp":
		return []string{"udp"}
	case "mixed":
		return [][]string{{"dtls", "udp"}, {"kcp", "udp"}, {"udp"}}[i%3]
	default:
		return []string{mode}
	}
}

// demoIP configures the IP service of a demo network: node 1 runs a SOCKS5
// port, every other node is an exit that may reach exactly the demo's own
// HTTP server.
//
// The server listens on loopback, and userspace TCP/IP stacks (rightly)
// drop packets from loopback addresses arriving on a network interface.
// So the client asks for an alias in the benchmarking range 198.18.0.0/15
// (RFC 2544), and the exits' PNAT, told so by its alias option, dials the
// loopback server for it. Nothing is ever sent to the alias itself.
type demoIP struct {
	socks  netip.AddrPort // node 1's SOCKS5 listen address
	server netip.AddrPort // the demo HTTP server, on loopback
	alias  netip.AddrPort // what the client fetches from
}

// demoAlias is the address the demo client uses for the loopback server.
var demoAlias = netip.MustParseAddr("198.18.0.1")

func writeDemoNet(dir string, count int, o demoOptions) ([]*demoNode, error) {
	coverName, ip := o.cover, o.ip
	var ns []*demoNode
	var peers []string
	for i := 1; i <= count; i++ {
		ip := netip.AddrFrom4([4]byte{127, byte(i), 0, 1})
		port, err := freeUDPPort(ip)
		if err != nil {
			return nil, err
		}
		n := &demoNode{dir: filepath.Join(dir, fmt.Sprintf("node%02d", i)), addr: netip.AddrPortFrom(ip, port)}
		ns = append(ns, n)
		peers = append(peers, n.addr.String())
		// Static discovery lists bare addresses, so list every transport's
		// address: nodes that share only udp find each other there.
		for _, extra := range demoTransports(o.transport, i-1)[1:] {
			port, err := freeUDPPort(ip)
			if err != nil {
				return nil, err
			}
			x := config.ExtraTransport{Name: extra, Listen: netip.AddrPortFrom(ip, port)}
			n.extra = append(n.extra, x)
			peers = append(peers, x.Listen.String())
		}
	}
	for i, n := range ns {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return nil, err
		}
		id, err := identity.Generate(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := id.Save(filepath.Join(n.dir, "identity.key")); err != nil {
			return nil, err
		}
		n.id = id.ID()
		cfg := config.Default()
		cfg.Node.Identity = "identity.key"
		cfg.Node.DataDir = "."
		cfg.Node.Control = "127.0.0.1:0"
		cfg.Node.LogLevel = "info"
		cfg.Transport.Listen = n.addr
		cfg.Transport.Name = demoTransports(o.transport, i)[0]
		cfg.Transport.Extra = append(cfg.Transport.Extra, n.extra...)
		switch o.discovery {
		case "gossip":
			// Tarzan has no directory: every node joins from one address
			// (the first node's, on udp, which every demo node runs).
			boot := ns[0].addr
			for _, x := range ns[0].extra {
				if x.Name == "udp" {
					boot = x.Listen
				}
			}
			cfg.Discovery.Name = "gossip"
			cfg.Discovery.Options = map[string]string{"bootstrap": boot.String(), "interval": "500ms"}
		default:
			cfg.Discovery.Name = "static"
			cfg.Discovery.Options = map[string]string{"peers": strings.Join(peers, ","), "interval": "2s"}
		}
		cfg.Cover.Name = coverName
		if ip != nil {
			if n == ns[0] {
				cfg.Adapter.Name = "socks"
				cfg.Adapter.Options = map[string]string{"listen": ip.socks.String()}
			} else {
				// These exits accept exactly the demo server's alias and
				// dial it on loopback from their own address.
				rule := fmt.Sprintf("accept %s/32:%d", ip.alias.Addr(), ip.alias.Port())
				cfg.Node.Exit = true
				cfg.Exit.Policy = []string{rule, "reject *:*"}
				cfg.Exit.Options = map[string]string{
					"alias": fmt.Sprintf("%s=%s", ip.alias.Addr(), ip.server.Addr()),
					"bind":  n.addr.Addr().String(),
				}
			}
		}
		if err := config.Write(filepath.Join(n.dir, "node.toml"), cfg); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

func freeUDPPort(ip netip.Addr) (uint16, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return 0, fmt.Errorf("binding %v (loopback 127.0.0.0/8 must be usable): %w", ip, err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

func waitControl(ctx context.Context, ns []*demoNode, progress func(string, ...any)) error {
	for _, n := range ns {
		for n.client == nil {
			if b, err := os.ReadFile(filepath.Join(n.dir, controlAddrFile)); err == nil && strings.TrimSpace(string(b)) != "" {
				n.client = &control.Client{Addr: strings.TrimSpace(string(b)), HTTP: nil}
				break
			}
			if n.cmd.ProcessState != nil || processExited(n.cmd) {
				log, _ := os.ReadFile(filepath.Join(n.dir, "node.log"))
				return fmt.Errorf("node %s exited at start:\n%s", n.id.Short(), tail(string(log), 20))
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for node %s to start: %w", n.id.Short(), ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	progress("all %d nodes running; waiting for membership and mimic links", len(ns))
	return nil
}

func waitMembership(ctx context.Context, ns []*demoNode, progress func(string, ...any)) error {
	last := ""
	for {
		full, up, total := 0, 0, 0
		for _, n := range ns {
			st, err := n.client.Status(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("waiting for membership: %w (%s)%s", ctx.Err(), strings.TrimSpace(last), laggards(ns))
				}
				continue
			}
			if st.Peers == len(ns)-1 {
				full++
			}
			up += st.LinksUp
			total += len(st.Mimics)
		}
		line := fmt.Sprintf("  %d/%d nodes know every peer; %d/%d mimic links up", full, len(ns), up, total)
		if line != last {
			progress("%s", line)
			last = line
		}
		if full == len(ns) && total > 0 && up == total {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for membership: %w (%s)%s", ctx.Err(), strings.TrimSpace(line), laggards(ns))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// laggards describes the nodes that have not converged, for the error
// message: which peers they lack and what they dropped.
func laggards(ns []*demoNode) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var b strings.Builder
	for _, n := range ns {
		st, err := n.client.Status(ctx)
		if err != nil {
			fmt.Fprintf(&b, "\n  node %s: no status: %v", n.id.Short(), err)
			continue
		}
		down := 0
		for _, m := range st.Mimics {
			if !m.Up {
				down++
			}
		}
		if st.Peers == len(ns)-1 && down == 0 {
			continue
		}
		drops := map[string]uint64{}
		for k, v := range st.Counters {
			if strings.HasPrefix(k, "drop_") {
				drops[k] = v
			}
		}
		fmt.Fprintf(&b, "\n  node %s (%s): knows %d/%d peers, %d mimic links down, drops %v", st.Short, st.Addr, st.Peers, len(ns)-1, down, drops)
	}
	return b.String()
}

// stopDemoNodes stops every node process the demo started: SIGTERM, then
// SIGKILL of its process group after a grace period.
func stopDemoNodes(ns []*demoNode) {
	for _, n := range ns {
		if n.cmd != nil && n.cmd.Process != nil {
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range ns {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// Plugins exit with their parent; make sure none outlives the demo.
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func processExited(cmd *exec.Cmd) bool {
	if cmd.Process == nil {
		return true
	}
	return cmd.Process.Signal(syscall.Signal(0)) != nil || isZombie(cmd.Process.Pid)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// countChildren counts live processes whose parent is pid (Linux /proc).
func countChildren(pid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	count := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			count++
		}
	}
	return count
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
