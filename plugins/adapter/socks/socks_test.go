package socks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestProxy opens a proxy on a loopback port wired to a fake exit.
func newTestProxy(t *testing.T, extra map[string]string) (*Proxy, *fakeExit) {
	t.Helper()
	opts := map[string]string{"listen": "127.0.0.1:0", "connect_timeout": "20s"}
	for k, v := range extra {
		opts[k] = v
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(adapter.Config{MTU: 1280}); err != nil {
		t.Fatal(err)
	}
	x := startFakeExit(t, a)
	return a.(*Proxy), x
}

// fetch sends an HTTP/1.0 GET over c and returns the body.
func fetch(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, body, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(resp, []byte("HTTP/1.0 200")) || !ok {
		t.Fatalf("bad response %q", resp)
	}
	return string(body)
}

func connectOK(t *testing.T, sc socksClient, target string) net.Conn {
	t.Helper()
	c, rep, _, err := sc.request(cmdConnect, target)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if rep != repSucceeded {
		c.Close()
		t.Fatalf("CONNECT %s: reply %#x, want success", target, rep)
	}
	return c
}

func TestConnectByIP(t *testing.T) {
	p, _ := newTestProxy(t, nil)
	sc := socksClient{server: p.Addr()}
	for _, tc := range []struct{ target, from string }{
		{"198.18.0.1:80", "from=100.64.0.2:"},
		{"[2001:db8::1]:80", "from=[fd7a:7a72:7a6e::2]:"},
	} {
		c := connectOK(t, sc, tc.target)
		body := fetch(t, c)
		c.Close()
		if !strings.HasPrefix(body, "hello flow=0 ") || !strings.Contains(body, tc.from) {
			t.Errorf("%s: body %q, want flow 0 and %s", tc.target, body, tc.from)
		}
	}
}

// The names exist only in the fake exit's resolver (and .test is never
// delegated), so success proves resolution went through the tunnel.
func TestConnectByNameResolvesInTunnel(t *testing.T) {
	p, x := newTestProxy(t, nil)
	sc := socksClient{server: p.Addr()}
	for _, tc := range []struct{ target, from string }{
		{"web.tarzan.test:80", "from=100.64.0.2:"},
		{"web6.tarzan.test:80", "from=[fd7a:7a72:7a6e::2]:"},
	} {
		before := x.dnsQueries.Load()
		c := connectOK(t, sc, tc.target)
		body := fetch(t, c)
		c.Close()
		if !strings.Contains(body, tc.from) {
			t.Errorf("%s: body %q, want %s", tc.target, body, tc.from)
		}
		if x.dnsQueries.Load() == before {
			t.Errorf("%s: no DNS query reached the exit", tc.target)
		}
	}
}

func TestIsolationByUsername(t *testing.T) {
	p, x := newTestProxy(t, nil)
	flowOf := func(user string) string {
		c := connectOK(t, socksClient{server: p.Addr(), user: user, pass: "x"}, "198.18.0.1:80")
		defer c.Close()
		body := fetch(t, c)
		flow, _, _ := strings.Cut(body, " from=")
		return flow
	}
	alice, bob, alice2 := flowOf("alice"), flowOf("bob"), flowOf("alice")
	if alice == bob {
		t.Errorf("alice and bob share %s", alice)
	}
	if alice != alice2 {
		t.Errorf("alice moved from %s to %s", alice, alice2)
	}
	if alice == "hello flow=0" || bob == "hello flow=0" {
		t.Errorf("authenticated users got the default flow: %s, %s", alice, bob)
	}
	if got := len(x.flows()); got != 2 {
		t.Errorf("exit saw %d flows, want 2", got)
	}
}

func TestIsolationByDestination(t *testing.T) {
	p, x := newTestProxy(t, map[string]string{"isolate": "auth,dest"})
	sc := socksClient{server: p.Addr(), user: "alice"}
	for _, target := range []string{"198.18.0.1:80", "web.tarzan.test:80", "198.18.0.1:80"} {
		c := connectOK(t, sc, target)
		fetch(t, c)
		c.Close()
	}
	if got := len(x.flows()); got != 2 {
		t.Errorf("exit saw flows %v, want 2 (one per destination host)", x.flows())
	}
}

func TestConnectErrors(t *testing.T) {
	p, _ := newTestProxy(t, nil)
	sc := socksClient{server: p.Addr()}
	for _, tc := range []struct {
		target string
		want   byte
	}{
		{"198.18.0.1:81", repConnectionRefused}, // RST from the exit's side
		{"198.18.0.99:80", repHostUnreachable},  // ICMP host unreachable
		{"nosuch.tarzan.test:80", repHostUnreachable},
		{"127.0.0.1:80", repNotAllowed},
		{"loopback.tarzan.test:80", repNotAllowed},
		{"[ff02::1]:80", repNotAllowed},
	} {
		start := time.Now()
		c, rep, _, err := sc.request(cmdConnect, tc.target)
		if err != nil {
			t.Errorf("%s: %v", tc.target, err)
			continue
		}
		c.Close()
		if rep != tc.want {
			t.Errorf("%s: reply %#x, want %#x", tc.target, rep, tc.want)
		}
		// connect_timeout is 20 s: an RST or ICMP error must end it early.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: reply took %v, as if waiting for the timeout", tc.target, d)
		}
	}
	c, rep, _, err := sc.request(cmdBind, "198.18.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if rep != repCommandNotSupported {
		t.Errorf("BIND: reply %#x, want %#x", rep, repCommandNotSupported)
	}
}

func TestConnectTimeout(t *testing.T) {
	p, _ := newTestProxy(t, map[string]string{"connect_timeout": "300ms"})
	c, rep, _, err := socksClient{server: p.Addr()}.request(cmdConnect, "198.18.0.98:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if rep != repHostUnreachable {
		t.Errorf("reply %#x, want host unreachable", rep)
	}
}

func TestWriteUnknownFlow(t *testing.T) {
	p, _ := newTestProxy(t, nil)
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	n, err := p.WritePackets([]adapter.Packet{{Buf: pkt, N: 40, Flow: 12345}, {Buf: []byte{0xff}, N: 1}})
	if n != 2 || err != nil {
		t.Errorf("WritePackets = %d, %v; want both dropped quietly", n, err)
	}
}

func TestUDPAssociate(t *testing.T) {
	p, _ := newTestProxy(t, nil)
	ctl, rep, relayAddr, err := socksClient{server: p.Addr(), user: "u"}.request(cmdUDPAssociate, "0.0.0.0:0")
	if err != nil || rep != repSucceeded {
		t.Fatalf("UDP ASSOCIATE: rep %#x err %v", rep, err)
	}
	defer ctl.Close()
	uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for i, target := range []string{"198.18.0.1:7", "web.tarzan.test:7"} {
		host, _, _ := net.SplitHostPort(target)
		var msg []byte
		if a, err := netip.ParseAddr(host); err == nil {
			msg = appendUDPHeader(nil, netip.AddrPortFrom(a, 7))
		} else {
			msg = append([]byte{0, 0, 0, atypDomain, byte(len(host))}, host...)
			msg = append(msg, 0, 7)
		}
		payload := fmt.Sprintf("ping %d", i)
		msg = append(msg, payload...)
		// UDP may lose the first datagram while the stack warms up: retry.
		var got []byte
		for try := 0; try < 5 && got == nil; try++ {
			uc.Write(msg)
			uc.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 2048)
			n, err := uc.Read(buf)
			if err == nil {
				got = buf[:n]
			}
		}
		if got == nil {
			t.Fatalf("%s: no echo", target)
		}
		src, frag, data, err := parseUDPHeader(got)
		if err != nil || frag != 0 || string(data) != payload || src.addr != webAddr4 || src.port != 7 {
			t.Errorf("%s: echo from %v frag %d %q err %v", target, src, frag, data, err)
		}
	}
}

func TestIdleGroupsClose(t *testing.T) {
	p, _ := newTestProxy(t, map[string]string{"idle_timeout": "50ms"})
	c := connectOK(t, socksClient{server: p.Addr(), user: "a"}, "198.18.0.1:80")
	fetch(t, c)
	if p.groupCount() != 1 {
		t.Fatalf("groups = %d while a session is open", p.groupCount())
	}
	c.Close()
	for i := 0; i < 200 && p.groupCount() != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.groupCount(); n != 0 {
		t.Fatalf("groups = %d after the idle timeout", n)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"listen": "0.0.0.0:1080"}, false},
		{map[string]string{"listen": "0.0.0.0:1080", "allow_remote": "true"}, true},
		{map[string]string{"listen": "[::1]:1080", "isolate": "auth,dest"}, true},
		{map[string]string{"isolate": "dest"}, false},
		{map[string]string{"mtu": "576"}, false},
		{map[string]string{"address": "100.64.0.9/10", "dns": "100.64.0.53,fd7a:7a72:7a6e::53"}, true},
		{map[string]string{"address": "nope"}, false},
		{map[string]string{"bogus": "1"}, false},
	} {
		_, err := New(tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("New(%v): err %v, want ok=%v", tc.opts, err, tc.ok)
		}
	}
	a, _ := New(nil)
	if a.Name() != Name || a.Role() != adapter.RoleClient {
		t.Errorf("Name %q Role %q", a.Name(), a.Role())
	}
}

func TestClosedAdapter(t *testing.T) {
	a, err := New(map[string]string{"listen": "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(adapter.Config{}); err != nil {
		t.Fatal(err)
	}
	addr := a.(*Proxy).Addr()
	a.Close()
	a.Close()
	pk := []adapter.Packet{{Buf: make([]byte, 1500)}}
	if _, err := a.ReadPackets(pk); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("ReadPackets after Close: %v", err)
	}
	if _, err := a.WritePackets(pk); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("WritePackets after Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("listener still open after Close")
	}
}

// TestCurl drives the adapter with an unmodified curl, which hands the
// hostname to the proxy (socks5h).
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	p, x := newTestProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sS", "--max-time", "20",
		"--socks5-hostname", p.Addr().String(), "--proxy-user", "curl:pw",
		"http://web.tarzan.test/")
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no *_proxy variables from the environment
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "hello flow=") || !strings.Contains(string(out), "from=100.64.0.2:") {
		t.Errorf("curl got %q", out)
	}
	if x.dnsQueries.Load() == 0 {
		t.Errorf("no DNS query reached the exit")
	}
	if flows := x.flows(); len(flows) != 1 || slices.Contains(flows, 0) {
		t.Errorf("flows %v, want one non-default (curl sent credentials)", flows)
	}
}

// A name is looked up through the tunnel once per isolation group while
// its answer lives (the fake exit answers with TTL 60): a second CONNECT
// by name in the same group asks nothing, one in another group asks its
// own exit (D42; caches never cross groups, D28).
func TestDNSCachePerGroup(t *testing.T) {
	p, x := newTestProxy(t, nil)
	connectAs := func(user string) {
		t.Helper()
		c := connectOK(t, socksClient{server: p.Addr(), user: user, pass: "x"}, "web.tarzan.test:80")
		fetch(t, c)
		c.Close()
	}
	connectAs("alice")
	first := x.dnsQueries.Load()
	if first == 0 {
		t.Fatal("no DNS query reached the exit")
	}
	connectAs("alice")
	if got := x.dnsQueries.Load(); got != first {
		t.Errorf("second CONNECT by name in one group: %d queries, want still %d (cached)", got, first)
	}
	connectAs("bob")
	if got := x.dnsQueries.Load(); got == first {
		t.Error("another group used alice's cached answer")
	}
	st := p.Stats()
	if st["groups"] != 2 || st["dns_cache_hits"] != 1 || st["dns_queries"] != 2 || st["stack_tx_dropped"] != 0 {
		t.Errorf("Stats() = %v, want 2 groups, 2 lookups sent, 1 cache hit, nothing dropped", st)
	}
}

// With optimistic = true, CONNECT is answered with success before the
// connection through the tunnel is up; the request sent at once still
// arrives; errors known locally keep their reply codes; a connect that
// fails later resets the client and is counted.
func TestOptimisticConnect(t *testing.T) {
	p, _ := newTestProxy(t, map[string]string{"optimistic": "true"})
	sc := socksClient{server: p.Addr()}

	c, rep, bnd, err := sc.request(cmdConnect, "198.18.0.1:80")
	if err != nil || rep != repSucceeded {
		t.Fatalf("CONNECT: reply %#x, %v; want success", rep, err)
	}
	if bnd != netip.AddrPortFrom(netip.IPv4Unspecified(), 0) {
		t.Errorf("optimistic reply's BND %v, want 0.0.0.0:0", bnd)
	}
	if body := fetch(t, c); !strings.HasPrefix(body, "hello flow=0 ") {
		t.Errorf("body %q", body)
	}
	c.Close()

	// Refused and unreachable after the reply: a reset, counted.
	for i, target := range []string{"198.18.0.1:81", "198.18.0.99:80"} {
		c, rep, _, err := sc.request(cmdConnect, target)
		if err != nil || rep != repSucceeded {
			t.Fatalf("%s: reply %#x, %v; want an optimistic success", target, rep, err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		// The reset shows on whichever call comes first after it.
		_, werr := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		_, rerr := io.ReadAll(c)
		c.Close()
		if werr == nil && rerr == nil { // a clean EOF would look like an empty answer
			t.Errorf("%s: the failed connect ended without an error, want connection reset", target)
		}
		if got := p.Stats()["connect_failed_after_reply"]; got != uint64(i+1) {
			t.Errorf("%s: connect_failed_after_reply = %d, want %d", target, got, i+1)
		}
	}

	// What the adapter knows before dialling still gets its own code.
	for _, tc := range []struct {
		target string
		want   byte
	}{
		{"127.0.0.1:80", repNotAllowed},
		{"nosuch.tarzan.test:80", repHostUnreachable},
	} {
		c, rep, _, err := sc.request(cmdConnect, tc.target)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		c.Close()
		if rep != tc.want {
			t.Errorf("%s: reply %#x, want %#x", tc.target, rep, tc.want)
		}
	}
}
