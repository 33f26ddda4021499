package localnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/tarzan-net/tarzan/config"
)

// Loopback shapes a network on loopback (the demo's and the end-to-end
// tests'): node i (from 1) listens on 127.i.0.1, so every node is alone
// in its /16 domain.
type Loopback struct {
	Cover     string    // cover policy of every node ("": none)
	Transport string    // udp, dtls, kcp, or mixed; "" = udp; ignored with External
	External  *External // a transport plugin executable every node runs (ProbeTransport)
	Discovery string    // gossip (one bootstrap address) or static (every address listed; the default)
	IP        *IPService
}

// IPService configures the IP service of a loopback network: node 1 runs
// a SOCKS5 port, every other node is an exit that may reach exactly one
// server.
//
// The server listens on loopback, and userspace TCP/IP stacks (rightly)
// drop packets from loopback addresses arriving on a network interface.
// So the client asks for an alias in the benchmarking range 198.18.0.0/15
// (RFC 2544), and the exits' PNAT, told so by its alias option, dials the
// loopback server for it. Nothing is ever sent to the alias itself.
type IPService struct {
	SOCKS  netip.AddrPort // node 1's SOCKS5 listen address
	Server netip.AddrPort // the HTTP server, on loopback
	Alias  netip.AddrPort // what the client fetches from
}

// Alias is the address a loopback network's client uses for the server.
var Alias = netip.MustParseAddr("198.18.0.1")

// NewIPService is the IP service for server: a free SOCKS5 port on node
// 1's address and the server's alias.
func NewIPService(server netip.AddrPort) (*IPService, error) {
	client := netip.AddrFrom4([4]byte{127, 1, 0, 1})
	port, err := freeTCPPort(client)
	if err != nil {
		return nil, err
	}
	return &IPService{SOCKS: netip.AddrPortFrom(client, port), Server: server,
		Alias: netip.AddrPortFrom(Alias, server.Port())}, nil
}

// Transports returns node i's transports in preference order. In a mixed
// network every node also runs udp, so any two share a transport, while
// pairs of dtls or kcp nodes use those.
func Transports(mode string, i int) []string {
	switch mode {
	case "", "udp":
		return []string{"udp"}
	case "mixed":
		return [][]string{{"dtls", "udp"}, {"kcp", "udp"}, {"udp"}}[i%3]
	default:
		return []string{mode}
	}
}

// Configs returns count node configurations of the shape o, on free
// loopback ports.
func (o Loopback) Configs(count int) ([]*config.Config, error) {
	var cfgs []*config.Config
	var peers []string
	for i := range count {
		ip := netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1})
		cfg, err := o.transports(i, ip)
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, cfg)
		// Static discovery lists bare addresses, so list every transport's
		// address: nodes that share only udp find each other there.
		peers = append(peers, cfg.Transport.Listen.String())
		for _, x := range cfg.Transport.Extra {
			peers = append(peers, x.Listen.String())
		}
	}
	for i, cfg := range cfgs {
		o.discovery(cfg, cfgs[0], peers)
		cfg.Cover.Name = o.Cover
		if cfg.Cover.Name == "" {
			cfg.Cover.Name = "none"
		}
		if o.IP != nil {
			o.IP.configure(cfg, i)
		}
	}
	return cfgs, nil
}

// transports is node i's configuration with its transports bound.
func (o Loopback) transports(i int, ip netip.Addr) (*config.Config, error) {
	cfg := config.Default()
	cfg.Node.Control = "127.0.0.1:0"
	cfg.Node.LogLevel = "info"
	names := Transports(o.Transport, i)
	if o.External != nil {
		names = []string{o.External.Name}
		cfg.Transport.Plugin = o.External.plugin()
	}
	cfg.Transport.Name = names[0]
	for j, name := range names {
		port, err := freeUDPPort(ip)
		if err != nil {
			return nil, err
		}
		if j == 0 {
			cfg.Transport.Listen = netip.AddrPortFrom(ip, port)
			continue
		}
		cfg.Transport.Extra = append(cfg.Transport.Extra, config.ExtraTransport{Name: name, Listen: netip.AddrPortFrom(ip, port)})
	}
	return cfg, nil
}

func (o Loopback) discovery(cfg, first *config.Config, peers []string) {
	if o.Discovery != "gossip" {
		cfg.Discovery.Name = "static"
		cfg.Discovery.Options = map[string]string{"peers": strings.Join(peers, ","), "interval": "2s"}
		return
	}
	// Tarzan has no directory: every node joins from one address (the
	// first node's, on udp, which every node runs).
	boot := first.Transport.Listen
	for _, x := range first.Transport.Extra {
		if x.Name == "udp" {
			boot = x.Listen
		}
	}
	cfg.Discovery.Name = "gossip"
	cfg.Discovery.Options = map[string]string{"bootstrap": boot.String(), "interval": "500ms"}
}

// configure makes node i the SOCKS5 client (i = 0) or an exit that
// accepts exactly the server's alias and dials it on loopback from its
// own address.
func (ip *IPService) configure(cfg *config.Config, i int) {
	if i == 0 {
		cfg.Adapter.Name = "socks"
		cfg.Adapter.Options = map[string]string{"listen": ip.SOCKS.String()}
		return
	}
	rule := fmt.Sprintf("accept %s/32:%d", ip.Alias.Addr(), ip.Alias.Port())
	cfg.Node.Exit = true
	cfg.Exit.Policy = []string{rule, "reject *:*"}
	cfg.Exit.Options = map[string]string{
		"alias": fmt.Sprintf("%s=%s", ip.Alias.Addr(), ip.Server.Addr()),
		"bind":  cfg.Transport.Listen.Addr().String(),
	}
}

// freeUDPPort finds a free UDP port on ip.
func freeUDPPort(ip netip.Addr) (uint16, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return 0, fmt.Errorf("binding %v (loopback 127.0.0.0/8 must be usable): %w", ip, err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

// freeTCPPort finds a free TCP port on ip.
func freeTCPPort(ip netip.Addr) (uint16, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

// NodeName names loopback node i (from 0) as the demo always has: node01, ...
func NodeName(i int) string { return fmt.Sprintf("node%02d", i+1) }

// StartLoopback writes count nodes of shape o under dir, starts them as
// `exe node` processes and waits until they joined (ctx bounds the wait).
// On error it has stopped them.
func StartLoopback(ctx context.Context, dir, exe string, count int, o Loopback, progress func(string, ...any)) (*Net, error) {
	cfgs, err := o.Configs(count)
	if err != nil {
		return nil, err
	}
	nw, err := Write(dir, cfgs, NodeName)
	if err != nil {
		return nil, err
	}
	nw.Progress = progress
	nw.progress("starting %d nodes in %s", count, dir)
	if err := nw.Start(exe); err != nil {
		nw.Stop()
		return nil, err
	}
	if err := nw.WaitJoined(ctx); err != nil {
		nw.Stop()
		return nil, err
	}
	return nw, nil
}
