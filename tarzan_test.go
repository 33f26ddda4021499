package tarzan_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan"
	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
)

// lonely starts a node that knows no peers.
func lonely(t *testing.T, dir string) *tarzan.Node {
	t.Helper()
	n, err := tarzan.Start(context.Background(), tarzan.Options{Dir: dir, Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestStartCreatesPrivateIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	n := lonely(t, dir)
	st, err := os.Stat(filepath.Join(dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("identity.key mode %04o, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %04o, want 0700", st.Mode().Perm())
	}
	id := n.ID()
	n.Close()
	// The same directory is the same node.
	if again := lonely(t, dir); again.ID() != id {
		t.Errorf("restarted node has ID %s, want %s", again.ID(), id)
	}
}

// With no peers a dial waits for ctx and then says what was missing.
func TestDialWithoutPeersSaysWhy(t *testing.T) {
	n := lonely(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := n.Dial(ctx, "tcp", "example.com:80")
	t.Logf("dial without peers: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "knows 0 other nodes") {
		t.Errorf("dial without peers: %v, want a deadline error saying the node knows 0 other nodes", err)
	}
	if err := n.Ready(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ready without peers: %v", err)
	}
}

func TestDialAfterClose(t *testing.T) {
	n := lonely(t, t.TempDir())
	c := n.Isolated("x")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10s after Close")
	}
	for name, dial := range map[string]func(context.Context, string, string) (net.Conn, error){"node": n.Dial, "isolated": c.Dial} {
		if _, err := dial(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, tarzan.ErrClosed) {
			t.Errorf("%s dial after Close: %v, want ErrClosed", name, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("closing a client after its node: %v", err)
	}
	if _, err := n.Isolated("y").Dial(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, tarzan.ErrClosed) {
		t.Errorf("dial of a client made after Close: %v, want ErrClosed", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		o    tarzan.Options
		want string
	}{
		{tarzan.Options{Discovery: "dns"}, `Options.Discovery "dns"`},
		{tarzan.Options{Hops: 9}, "hops"},
		{tarzan.Options{Listen: netip.MustParseAddrPort("0.0.0.0:0")}, "set Options.Advertise"},
		{tarzan.Options{Configure: func(c *config.Config) { c.Adapter.Name = "socks" }}, "[adapter] selects client adapter \"socks\""},
	} {
		tc.o.Dir = t.TempDir()
		if !tc.o.Listen.IsValid() {
			tc.o.Listen = netip.MustParseAddrPort("127.0.0.1:0")
		}
		n, err := tarzan.Start(context.Background(), tc.o)
		if err == nil {
			n.Close()
			t.Errorf("Start(%+v) succeeded", tc.o)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start: %v, want it to mention %s", err, tc.want)
		}
	}
}

func TestStartConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Transport.Listen = netip.MustParseAddrPort("127.0.0.1:0")
	path := filepath.Join(dir, "node.toml")
	if err := config.Write(path, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := tarzan.StartConfig(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id, err := identity.Load(filepath.Join(dir, "identity.key")) // created beside the file
	if err != nil {
		t.Fatal(err)
	}
	if n.ID() != id.ID().String() {
		t.Errorf("node ID %s, identity file has %s", n.ID(), id.ID())
	}

	cfg.Adapter.Name = "socks"
	bad := filepath.Join(dir, "socks.toml")
	if err := config.Write(bad, cfg); err != nil {
		t.Fatal(err)
	}
	if n, err := tarzan.StartConfig(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "remove the [adapter] section") {
		if n != nil {
			n.Close()
		}
		t.Errorf("StartConfig with [adapter] socks: %v", err)
	}
}

// One network for the tests below, which each take a few seconds of it.
func TestNetwork(t *testing.T) {
	var seen = make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.RemoteAddr:
		default:
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	echo := udpEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw, err := startNetwork(ctx, 8, srv, echo)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	n, err := tarzan.Start(ctx, tarzan.Options{Dir: t.TempDir(), Listen: netip.MustParseAddrPort("127.1.0.1:0"),
		Peers: []netip.AddrPort{nw.Bootstrap()}, Configure: fastGossip})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := nw.WaitJoined(ctx, n); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, c *http.Client) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, "GET", "http://"+nw.Alias(srv)+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET: %v (node status %+v)", err, n.Status())
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("GET: body %q", b)
		}
		from := <-seen
		if host, _, _ := net.SplitHostPort(from); !nw.IsExit(host) {
			t.Errorf("server saw %s, want one of the exits %v (this node is %v)", from, nw.Exits(), n.Addr())
		}
	}

	t.Run("isolated groups get their own tunnels", func(t *testing.T) {
		a, b := n.Isolated("alice"), n.Isolated("bob")
		defer a.Close()
		defer b.Close()
		get(t, a.HTTPClient())
		get(t, b.HTTPClient())
		flows := tarzan.TunnelFlows(n)
		slices.Sort(flows)
		flows = slices.Compact(flows)
		if len(flows) < 2 || slices.Contains(flows, 0) {
			t.Errorf("tunnels serve flows %v, want two isolation groups (nonzero flows), each on its own tunnel", flows)
		}
	})

	t.Run("names are resolved at the exit", func(t *testing.T) {
		// "localhost" is answered by the exit's resolver: a loopback
		// address, which the node refuses to send through a tunnel.
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := n.Dial(dctx, "tcp", "localhost:80")
		t.Logf("dial localhost:80: %v", err)
		if !errors.Is(err, tarzan.ErrNotAllowed) {
			t.Errorf("dial localhost: %v, want ErrNotAllowed after the exit resolved it", err)
		}
	})

	t.Run("refused destination fails with a reason", func(t *testing.T) {
		// The exits accept only the test server: no tunnel can be built
		// to 198.18.0.2, and the dial says so instead of hanging.
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := n.Dial(dctx, "tcp", "198.18.0.2:80")
		t.Logf("dial 198.18.0.2:80: %v", err)
		if !errors.Is(err, tarzan.ErrUnreachable) || !strings.Contains(err.Error(), "3-hop tunnel") {
			t.Errorf("dial a destination no exit accepts: %v", err)
		}
	})

	t.Run("udp", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		c, err := n.Dial(dctx, "udp", netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), echo).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// UDP may lose the first datagrams while the tunnel is built:
		// send until one comes back.
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			if dctx.Err() != nil {
				t.Fatalf("no echo after %d datagrams in 60s (node status %+v)", i, n.Status())
			}
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(time.Second))
			if k, err := c.Read(buf); err == nil {
				if string(buf[:k]) != "ping" {
					t.Fatalf("echo %q, want ping", buf[:k])
				}
				return
			}
		}
	})
}

// udpEcho serves a UDP echo on loopback until the test ends.
func udpEcho(t *testing.T) uint16 {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

func TestIsolationTokens(t *testing.T) {
	n := lonely(t, t.TempDir())
	a1, a2, b := n.Isolated("a"), n.Isolated("a"), n.Isolated("b")
	f1, f2 := n.NewIsolated(), n.NewIsolated()
	defer func() {
		for _, c := range []*tarzan.Client{a1, a2, b, f1, f2} {
			c.Close()
		}
	}()
	flow := tarzan.ClientFlow
	if flow(n.Isolated("")) != 0 {
		t.Errorf("Isolated(\"\") has flow %d, want the default group's 0", flow(n.Isolated("")))
	}
	if flow(a1) == 0 || flow(a1) != flow(a2) {
		t.Errorf("two clients of token a: flows %d and %d, want one nonzero flow", flow(a1), flow(a2))
	}
	seen := map[uint64]bool{0: true, flow(a1): true}
	for name, c := range map[string]*tarzan.Client{"b": b, "first NewIsolated": f1, "second NewIsolated": f2} {
		if seen[flow(c)] {
			t.Errorf("%s shares flow %d with another group", name, flow(c))
		}
		seen[flow(c)] = true
	}
	f2.Close()
	if _, err := f2.Dial(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, tarzan.ErrClientClosed) {
		t.Errorf("dial of a closed client: %v, want ErrClientClosed", err)
	}
	// A token that looks like NewIsolated's names does not join its group.
	if x := n.Isolated("new:1"); flow(x) == flow(f1) {
		t.Errorf("Isolated(\"new:1\") joined the first NewIsolated group (flow %d)", flow(x))
	} else {
		x.Close()
	}
}
