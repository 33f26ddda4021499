package tarzan_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan"
)

// Fetch a page through a 3-hop tunnel of an in-process node. The network
// it joins is nine exit nodes in this same process, all on loopback (see
// startNetwork); a real program lists real peers instead.
func Example() {
	// The page. It records who connected: an exit, never this node.
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.RemoteAddr)
		fmt.Fprint(w, "hello through the tunnel")
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	network, err := startNetwork(ctx, 9, srv)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer network.Close()

	dir, err := os.MkdirTemp("", "tarzan-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	node, err := tarzan.Start(ctx, tarzan.Options{
		Dir:       dir, // identity.key is created here
		Listen:    netip.MustParseAddrPort("127.1.0.1:0"),
		Peers:     []netip.AddrPort{network.Bootstrap()},
		Hops:      3,
		Configure: fastGossip,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	if err := network.WaitJoined(ctx, node); err != nil {
		fmt.Println(err)
		return
	}

	// The exits reach the loopback server under an alias (see
	// startNetwork); a program on the Internet fetches real URLs.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+network.Alias(srv)+"/", nil)
	resp, err := node.HTTPClient().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	from, _ := seen.Load().(string)
	host, _, _ := net.SplitHostPort(from)
	if network.IsExit(host) && host != node.Addr().Addr().String() {
		fmt.Println("the server saw an exit, not this node")
	} else {
		fmt.Printf("the server saw %q; this node is %v, the exits are %v\n", from, node.Addr(), network.Exits())
	}
	fmt.Println("tunnel hops:", tarzan.TunnelHops(node))
	// Output:
	// hello through the tunnel
	// the server saw an exit, not this node
	// tunnel hops: 3
}

// Two accounts that must not be linked use two isolated clients: their
// connections never share a tunnel, so no relay or exit sees them on one
// circuit. (Not run: it needs a network.)
func ExampleNode_Isolated() {
	ctx := context.Background()
	node, err := tarzan.Start(ctx, tarzan.Options{
		Dir:    "state",
		Listen: netip.MustParseAddrPort("192.0.2.10:7700"),
		Peers:  []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:7700")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()

	alice, bob := node.Isolated("alice"), node.Isolated("bob")
	defer alice.Close()
	defer bob.Close()
	alice.HTTPClient().Get("https://example.com/login?user=alice")
	bob.HTTPClient().Get("https://example.com/login?user=bob")

	// One connection that shares a tunnel with nothing else.
	once := node.NewIsolated()
	defer once.Close()
	if conn, err := once.Dial(ctx, "tcp", "example.com:443"); err == nil {
		conn.Close()
	}
}

// A node from a node.toml written by `tarzan init` (without an [adapter]
// section: the program dials in process). (Not run: it needs a network.)
func ExampleStartConfig() {
	// The node runs until this context ends or Close: not a timeout.
	node, err := tarzan.StartConfig(context.Background(), "mynode/node.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	wait, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := node.Ready(wait); err != nil {
		fmt.Println("no network yet:", err)
		return
	}
	fmt.Println("joined as", node.ID())
}
