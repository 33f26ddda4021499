package tarzan_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan"
	"github.com/tarzan-net/tarzan/config"
)

// alias is what clients dial for the loopback test server.
//
// The server listens on 127.0.0.1, but a tunnel never carries loopback
// destinations: the client's core drops them (through a tunnel, 127.0.0.1
// would mean the exit's own host). So clients ask for an address in the
// benchmarking range 198.18.0.0/15 (RFC 2544) and the exits' pnat, told so
// by its alias option, dials the loopback server for it. The default exit
// policy rejects that range like every address that is not globally
// reachable unicast, so these exits accept it explicitly, and only it:
// this test network opens its exits to the test server and to nothing
// else on the machine.
var alias = netip.MustParseAddr("198.18.0.1")

// testNetwork is a network of exit nodes in this process, each on its own
// loopback address 127.N.0.1 (N = 2, 3, ...), which is also the address
// its exit dials from: the server sees which exit it was.
type testNetwork struct {
	nodes []*tarzan.Node
	dirs  []string
	exits map[string]bool
}

// fastGossip makes gossip rounds frequent, so a test network forms in
// seconds rather than minutes.
func fastGossip(cfg *config.Config) { cfg.Discovery.Options["interval"] = "500ms" }

// startNetwork starts count exit nodes that may reach srv and the
// loopback ports extra (and nothing else) through alias. The first is
// every other's bootstrap peer.
func startNetwork(ctx context.Context, count int, srv *httptest.Server, extra ...uint16) (*testNetwork, error) {
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	var policy []string
	for _, p := range append([]uint16{port}, extra...) {
		policy = append(policy, fmt.Sprintf("accept %s/32:%d", alias, p))
	}
	policy = append(policy, "reject *:*")
	nw := &testNetwork{exits: map[string]bool{}}
	for i := 0; i < count; i++ {
		ip := netip.AddrFrom4([4]byte{127, byte(i + 2), 0, 1})
		dir, err := os.MkdirTemp("", "tarzan-exit")
		if err != nil {
			nw.Close()
			return nil, err
		}
		nw.dirs = append(nw.dirs, dir)
		o := tarzan.Options{
			Dir:        dir,
			Listen:     netip.AddrPortFrom(ip, 0),
			Exit:       true,
			ExitPolicy: policy,
			ExitOptions: map[string]string{
				"alias": fmt.Sprintf("%s=127.0.0.1", alias),
				"bind":  ip.String(),
			},
			Configure: fastGossip,
		}
		if i > 0 {
			o.Peers = []netip.AddrPort{nw.Bootstrap()}
		}
		n, err := tarzan.Start(ctx, o)
		if err != nil {
			nw.Close()
			return nil, fmt.Errorf("starting exit %d: %w", i+1, err)
		}
		nw.nodes = append(nw.nodes, n)
		nw.exits[ip.String()] = true
	}
	return nw, nil
}

// Bootstrap is the first node's address.
func (nw *testNetwork) Bootstrap() netip.AddrPort { return nw.nodes[0].Addr() }

// Alias is the "host:port" clients fetch srv from.
func (nw *testNetwork) Alias(srv *httptest.Server) string {
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	return netip.AddrPortFrom(alias, port).String()
}

// IsExit reports whether ip is one of the exits' addresses.
func (nw *testNetwork) IsExit(ip string) bool { return nw.exits[ip] }

// Exits lists the exits' addresses.
func (nw *testNetwork) Exits() []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range nw.nodes {
		out = append(out, n.Addr())
	}
	return out
}

// WaitJoined waits until every node of the network and joining know each
// other and have a mimic link up, or says what it saw when ctx ends.
func (nw *testNetwork) WaitJoined(ctx context.Context, joining ...*tarzan.Node) error {
	all := append(append([]*tarzan.Node{}, nw.nodes...), joining...)
	for {
		var lag []string
		for _, n := range all {
			if st := n.Status(); st.Peers < len(all)-1 || st.LinksUp == 0 {
				lag = append(lag, fmt.Sprintf("%v knows %d/%d peers, %d links up", n.Addr(), st.Peers, len(all)-1, st.LinksUp))
			}
		}
		if len(lag) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("network did not form: %w:\n  %s", ctx.Err(), strings.Join(lag, "\n  "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops every node and removes their directories.
func (nw *testNetwork) Close() error {
	var errs []error
	for _, n := range nw.nodes {
		errs = append(errs, n.Close())
	}
	for _, d := range nw.dirs {
		os.RemoveAll(d)
	}
	return errors.Join(errs...)
}
