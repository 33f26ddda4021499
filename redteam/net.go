package redteam

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/plugins/discovery/static"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// Net is a local network of real nodes on an in-memory transport, each
// node alone in its /16 (127.i.0.1), all bootstrapped with every address.
// Hostile nodes are ordinary nodes whose Options a scenario changed (a Tap,
// say) or raw transports on the same network.
type Net struct {
	mem   *transporttest.Network
	Nodes []*node.Node
	IP    []*ipservice.Service // node i's IP service; nil without one (NetConfig.IP)
	Addrs []netip.AddrPort
	raws  []transport.Transport
	junk  transport.Transport // an outsider's socket for baseline floods
}

// NetConfig describes a network.
type NetConfig struct {
	Nodes int // default 8
	K     int // mimics per node; default 3
	// Tweak may change node i's options before it starts (a Tap, an exit
	// flag, shorter timeouts).
	Tweak func(i int, o *node.Options)
	// IP, when set, gives node i an IP service with the options it
	// returns (nil: none), started on the node before it starts.
	IP func(i int) *ipservice.Options
	// Wait bounds the wait for full membership and every mimic link up;
	// default 30 s.
	Wait time.Duration
}

// NodeAddr is node i's address: 127.(i+1).0.1, so each node has a /16 of
// its own and domain-uniform selection treats them alike.
func NodeAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1}), 7700)
}

// StartNet starts the network and waits until it has converged. On error
// everything started is stopped.
func StartNet(ctx context.Context, cfg NetConfig) (*Net, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 8
	}
	if cfg.K == 0 {
		cfg.K = 3
	}
	if cfg.Wait == 0 {
		cfg.Wait = 30 * time.Second
	}
	nt := &Net{mem: newMemNetwork()}
	var peers []string
	for i := 0; i < cfg.Nodes; i++ {
		nt.Addrs = append(nt.Addrs, NodeAddr(i))
		peers = append(peers, NodeAddr(i).String())
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < cfg.Nodes; i++ {
		id, err := identity.Generate(rand.Reader)
		if err != nil {
			nt.Close()
			return nil, err
		}
		// stretch = false: the attacks wait for victims to probe the
		// attacker's address, which they do on every proposal round.
		disc, err := static.New(map[string]string{"peers": strings.Join(peers, ","), "interval": "300ms", "stretch": "false"})
		if err != nil {
			nt.Close()
			return nil, err
		}
		o := node.Options{
			Identity: id, Transport: nt.mem.NewTransport(), Listen: nt.Addrs[i], Discovery: disc,
			MimicCount: cfg.K, MaintenanceInterval: 20 * time.Millisecond, Logger: quiet,
		}
		if cfg.Tweak != nil {
			cfg.Tweak(i, &o)
		}
		var svc *ipservice.Service
		if cfg.IP != nil {
			if io := cfg.IP(i); io != nil {
				if svc, err = ipservice.New(*io); err != nil {
					nt.Close()
					return nil, fmt.Errorf("redteam: node %d: %w", i, err)
				}
				o.ExitHandler = svc.ExitHandler()
			}
		}
		n, err := node.New(o)
		if err != nil {
			nt.Close()
			return nil, fmt.Errorf("redteam: node %d: %w", i, err)
		}
		nt.IP = append(nt.IP, svc)
		if svc != nil {
			if err := svc.Start(n); err != nil {
				n.Close()
				nt.Close()
				return nil, fmt.Errorf("redteam: node %d: %w", i, err)
			}
		}
		if err := n.Start(ctx); err != nil {
			nt.Close()
			return nil, fmt.Errorf("redteam: starting node %d: %w", i, err)
		}
		nt.Nodes = append(nt.Nodes, n)
	}
	var err error
	if nt.junk, err = nt.Raw(netip.MustParseAddrPort("127.250.0.1:7700")); err != nil {
		nt.Close()
		return nil, err
	}
	if err := nt.waitLinked(ctx, cfg.Wait); err != nil {
		nt.Close()
		return nil, err
	}
	return nt, nil
}

func (nt *Net) waitLinked(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		why := ""
	check:
		for _, n := range nt.Nodes {
			if got := n.View().Len(); got != len(nt.Nodes)-1 {
				why = fmt.Sprintf("%s knows %d of %d peers", n.ID().Short(), got, len(nt.Nodes)-1)
				break
			}
			for _, m := range n.Mimics() {
				if !m.Up {
					why = fmt.Sprintf("%s: link to %s down", n.ID().Short(), m.ID.Short())
					break check
				}
			}
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redteam: network did not converge in %v: %s", limit, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Raw gives a scenario a bare transport on the network at addr, to send
// frames of its own making (an outsider, or a node's address on another
// port). Net.Close closes it.
func (nt *Net) Raw(addr netip.AddrPort) (transport.Transport, error) {
	tr := nt.mem.NewTransport()
	if _, err := tr.Listen(addr); err != nil {
		return nil, err
	}
	nt.raws = append(nt.raws, tr)
	return tr, nil
}

// Index returns the position of the node with id, or -1.
func (nt *Net) Index(id identity.ID) int {
	for i, n := range nt.Nodes {
		if n.ID() == id {
			return i
		}
	}
	return -1
}

// Close stops every node and raw transport and waits for the nodes.
func (nt *Net) Close() {
	for _, tr := range nt.raws {
		tr.Close()
	}
	for _, n := range nt.Nodes {
		n.Close()
	}
	for _, n := range nt.Nodes {
		n.Wait()
	}
}

// newMemNetwork is the in-memory network the attacks run on. In a
// testing/synctest bubble (TestRedTeam) it has 1 ms of latency: with none
// every exchange happens at one virtual instant and a round trip measures
// 0 s. The bubble's clock starts at 2000-01-01, which no real clock reads.
func newMemNetwork() *transporttest.Network {
	if time.Now().Year() == 2000 {
		return transporttest.NewNetwork(transporttest.WithLatency(time.Millisecond))
	}
	return transporttest.NewNetwork()
}
