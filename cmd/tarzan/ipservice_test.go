package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/exitpolicy"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/plugins/adapter/pnat"
	"github.com/tarzan-net/tarzan/plugins/adapter/socks"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// The IP service end to end in one process: a SOCKS5 client node, relays
// and PNAT exits on an in-memory network, fetching from a real HTTP server
// on loopback.
func TestSOCKSFetchThroughTunnel(t *testing.T) {
	server, err := startDemoServer(fetchTestSize)
	if err != nil {
		t.Fatal(err)
	}
	defer server.close()
	alias := netip.AddrPortFrom(demoAlias, server.addr.Port())
	rule := fmt.Sprintf("accept %s/32:%d", alias.Addr(), alias.Port())
	pol, err := exitpolicy.Parse([]string{rule, "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	net := transporttest.NewNetwork()
	const count = 6
	var addrs []netip.AddrPort
	for i := 0; i < count; i++ {
		addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1}), 7700))
	}
	var sp *socks.Proxy
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var nodes []*node.Node
	for i := 0; i < count; i++ {
		id, _ := identity.Generate(rand.Reader)
		d := discoverytest.New()
		var props []discovery.Proposal
		for _, a := range addrs {
			props = append(props, discovery.Proposal{Addr: a})
		}
		d.Propose(props...)
		o := node.Options{Identity: id, Transport: net.NewTransport(), Listen: addrs[i], Discovery: d,
			MimicCount: 3, Logger: logger, MaintenanceInterval: 20 * time.Millisecond}
		var ipo ipservice.Options
		if i == 0 {
			a, err := socks.New(map[string]string{"listen": "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			ipo.ClientAdapter = a
			sp = a.(*socks.Proxy)
		} else {
			a, err := pnat.New(map[string]string{"policy": rule + ";reject *:*",
				"alias": fmt.Sprintf("%s=%s", alias.Addr(), server.addr.Addr()), "bind": addrs[i].Addr().String()})
			if err != nil {
				t.Fatal(err)
			}
			o.Exit, ipo.ExitAdapter, o.ExitPolicy = true, a, pol
		}
		svc, err := ipservice.New(ipo)
		if err != nil {
			t.Fatal(err)
		}
		o.ExitHandler = svc.ExitHandler()
		n, err := node.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(n); err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		t.Cleanup(func() { n.Close(); n.Wait() })
	}
	socksAddr := sp.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var f *fetchResult
	for ctx.Err() == nil {
		if f, err = fetchViaSOCKS(ctx, socksAddr, server, alias); err == nil {
			break
		}
		t.Logf("fetch: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		for _, n := range nodes {
			t.Logf("%s: %v", n.ID().Short(), n.Stats())
		}
		t.Fatal(err)
	}
	t.Logf("fetched %d bytes in %.3f s: %.1f Mbit/s", f.Bytes, f.Seconds, f.MBitPerSec)
	for _, n := range nodes {
		st := n.Stats()
		for k, v := range st {
			if strings.HasPrefix(k, "drop_") && v > 0 {
				t.Logf("%s %s=%d", n.ID().Short(), k, v)
			}
		}
	}
	if !f.SHA256Match {
		t.Fatal("fetched body does not match")
	}
	// The server saw an exit, never the client.
	exitSaw := false
	for _, a := range addrs[1:] {
		exitSaw = exitSaw || f.ServerSaw == a.Addr().String()
	}
	if !exitSaw {
		t.Fatalf("server saw %q, want one of the exits' addresses (the client is %s)", f.ServerSaw, addrs[0].Addr())
	}
}

// fetchTestSize is the file size of TestSOCKSFetchThroughTunnel; raise it
// to measure throughput in process.
var fetchTestSize = 1 << 20
