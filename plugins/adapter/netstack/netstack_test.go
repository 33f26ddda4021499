package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestAdapter opens an adapter wired to a fake exit.
func newTestAdapter(t *testing.T, opts map[string]string) (*Adapter, *fakeExit) {
	t.Helper()
	a, err := NewAdapter(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(adapter.Config{MTU: 1280}); err != nil {
		t.Fatal(err)
	}
	return a, startFakeExit(t, a)
}

// testCtx bounds one test's dials generously: the fake exit answers at
// once, so only a broken adapter takes this long.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// get fetches http://host/ over a fresh connection from dial.
func get(t *testing.T, dial func(context.Context, string, string) (net.Conn, error), host string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(testCtx(t), "GET", "http://"+host+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", host, err)
	}
	return string(b)
}

func TestDialTCPByAddress(t *testing.T) {
	a, x := newTestAdapter(t, nil)
	for _, tc := range []struct{ host, want string }{
		{"198.18.0.1:80", "hello flow=0 from=100.64.0.2:"},
		{"[2001:db8::1]:80", "hello flow=0 from=[fd7a:7a72:7a6e::2]:"},
	} {
		if got := get(t, a.DialContext, tc.host); !strings.HasPrefix(got, tc.want) {
			t.Errorf("GET %s = %q, want prefix %q", tc.host, got, tc.want)
		}
	}
	if n := x.dnsQueries.Load(); n != 0 {
		t.Errorf("%d DNS queries for dials by address, want 0", n)
	}
}

// A name only the fake exit's resolver knows resolves, so the query went
// through the tunnel and not to this host's resolver.
func TestDialByNameResolvesAtExit(t *testing.T) {
	a, x := newTestAdapter(t, nil)
	if got := get(t, a.DialContext, "web.tarzan.test:80"); !strings.HasPrefix(got, "hello flow=0 from=100.64.0.2:") {
		t.Errorf("GET web.tarzan.test = %q", got)
	}
	if got := get(t, a.DialContext, "web6.tarzan.test"+":80"); !strings.HasPrefix(got, "hello flow=0 from=[fd7a:7a72:7a6e::2]:") {
		t.Errorf("GET web6.tarzan.test = %q", got)
	}
	if x.dnsQueries.Load() == 0 {
		t.Error("no DNS query reached the fake exit")
	}
	_, err := a.DialContext(testCtx(t), "tcp", "nowhere.tarzan.test:80")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("dial an unknown name: %v, want a not-found *net.DNSError", err)
	}
}

func TestDialUDP(t *testing.T) {
	a, _ := newTestAdapter(t, nil)
	for _, network := range []string{"udp", "udp4"} {
		c, err := a.DialContext(testCtx(t), network, "web.tarzan.test:7")
		if err != nil {
			t.Fatalf("dial %s: %v", network, err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("ping " + network)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "ping "+network {
			t.Errorf("%s echo = %q, %v", network, buf[:n], err)
		}
		c.Close()
	}
}

// Each isolation group has its own Flow: the fake exit (like the core)
// sees them apart. The same key shares a group; a group reopened after
// its last handle closed gets a new Flow.
func TestGroupsHaveTheirOwnFlows(t *testing.T) {
	a, x := newTestAdapter(t, nil)
	g1, err := a.Group("alice")
	if err != nil {
		t.Fatal(err)
	}
	g1again, _ := a.Group("alice")
	g2, _ := a.Group("bob")
	if g1.Flow() == 0 || g2.Flow() == 0 || g1.Flow() == g2.Flow() || g1again.Flow() != g1.Flow() {
		t.Fatalf("flows alice=%d alice again=%d bob=%d: want alice's shared, both nonzero and distinct", g1.Flow(), g1again.Flow(), g2.Flow())
	}
	want := map[*Group]string{g1: "hello flow=1 ", g2: "hello flow=2 "}
	for g, w := range want {
		if got := get(t, g.DialContext, "web.tarzan.test:80"); !strings.HasPrefix(got, w) {
			t.Errorf("group %d: GET = %q, want prefix %q", g.Flow(), got, w)
		}
	}
	if f := x.flows(); !f[1] || !f[2] || f[0] {
		t.Errorf("fake exit saw flows %v, want 1 and 2 only", f)
	}
	g1.Close()
	if a.groupCount() != 2 {
		t.Errorf("%d groups after one of alice's two handles closed, want 2", a.groupCount())
	}
	g1again.Close()
	g1again.Close() // idempotent: must not release bob's or anyone's reference
	if a.groupCount() != 1 {
		t.Errorf("%d groups after alice's last handle closed, want 1 (bob)", a.groupCount())
	}
	g3, _ := a.Group("alice")
	defer g3.Close()
	if g3.Flow() == g1.Flow() || g3.Flow() == g2.Flow() {
		t.Errorf("reopened alice has flow %d, want a new one", g3.Flow())
	}
	g2.Close()
}

func TestDialRefusesLocalDestinations(t *testing.T) {
	a, _ := newTestAdapter(t, nil)
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "0.0.0.0:80", "224.0.0.1:5353", "169.254.1.1:80", "255.255.255.255:67", "loopback.tarzan.test:80"} {
		start := time.Now()
		_, err := a.DialContext(testCtx(t), "tcp", addr)
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("dial %s: %v, want ErrNotAllowed", addr, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("dial %s took %v to refuse", addr, d)
		}
	}
}

func TestDialErrors(t *testing.T) {
	a, _ := newTestAdapter(t, map[string]string{"address": "100.64.0.2"})
	ctx := testCtx(t)
	if _, err := a.DialContext(ctx, "tcp", "[2001:db8::1]:80"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("IPv6 dial from an IPv4-only stack: %v, want ErrNoRoute", err)
	}
	if _, err := a.DialContext(ctx, "sctp", "198.18.0.1:80"); err == nil || !strings.Contains(err.Error(), "unknown network sctp") {
		t.Errorf("dial sctp: %v, want unknown network", err)
	}
	if _, err := a.DialContext(ctx, "tcp6", "198.18.0.1:80"); err == nil || !strings.Contains(err.Error(), "no suitable address") {
		t.Errorf("tcp6 to an IPv4 address: %v, want no suitable address", err)
	}
	if _, err := a.DialContext(ctx, "tcp", "198.18.0.1"); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Errorf("dial without port: %v", err)
	}
}

func TestDialBeforeOpenAndAfterClose(t *testing.T) {
	a, err := NewAdapter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DialContext(context.Background(), "tcp", "198.18.0.1:80"); !errors.Is(err, ErrNotOpen) {
		t.Errorf("dial before Open: %v, want ErrNotOpen", err)
	}
	a.Open(adapter.Config{})
	a.Close()
	if _, err := a.DialContext(context.Background(), "tcp", "198.18.0.1:80"); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("dial after Close: %v, want adapter.ErrClosed", err)
	}
	if _, err := a.Group("x"); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("Group after Close: %v, want adapter.ErrClosed", err)
	}
}

// Close ends open connections: a Read blocked on one returns.
func TestCloseEndsConnections(t *testing.T) {
	a, _ := newTestAdapter(t, nil)
	c, err := a.DialContext(testCtx(t), "tcp", "198.18.0.1:80") // the server waits for a request
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); read <- err }()
	a.Close()
	select {
	case err := <-read:
		if err == nil {
			t.Error("Read returned no error after Close")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read still blocked 30s after Close")
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []map[string]string{{"listen": "x"}, {"mtu": "1000"}, {"dns": "nope"}, {"address": ""}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%v) accepted", bad)
		}
	}
	a, err := NewAdapter(map[string]string{"mtu": "1400", "address": "10.0.0.2", "dns": "10.0.0.53"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != Name || a.Role() != adapter.RoleClient || a.opts.mtu != 1400 || len(a.opts.addresses) != 1 || a.opts.dns[0].String() != "10.0.0.53" {
		t.Errorf("options not applied: %+v", a.opts)
	}
	a.Close()
}

// ICMP unreachable (what the core answers when it cannot build a tunnel
// for the destination) fails the dial at once with ErrUnreachable.
func TestDialUnreachable(t *testing.T) {
	a, x := newTestAdapter(t, nil)
	x.unreachable = netip.MustParseAddr("198.18.0.99")
	start := time.Now()
	_, err := a.DialContext(testCtx(t), "tcp", "198.18.0.99:80")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("dial: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the ICMP answer did not end the dial", d)
	}
}
