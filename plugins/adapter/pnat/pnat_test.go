package pnat

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"golang.org/x/net/dns/dnsmessage"
)

// loopbackOpts reach test servers on 127.0.0.1: the guard is lifted and
// the policy accepts loopback only.
var loopbackOpts = map[string]string{
	OptAllowLoopback: "true",
	OptPolicy:        "accept 127.0.0.0/8; accept [::1]; reject *",
}

// bodyServer serves a distinct random body per path and records the
// remote addresses it saw.
type bodyServer struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  map[string][]byte
	remotes []string
}

func newBodyServer(t *testing.T) *bodyServer {
	s := &bodyServer{bodies: make(map[string][]byte)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.remotes = append(s.remotes, r.RemoteAddr)
		b := s.bodies[r.URL.Path]
		if b == nil {
			b = make([]byte, 200_000)
			rand.Read(b)
			s.bodies[r.URL.Path] = b
		}
		s.mu.Unlock()
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bodyServer) body(path string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[path]
}

func fetch(t *testing.T, tnet *testClient, url string) []byte {
	t.Helper()
	tr := &http.Transport{DialContext: tnet.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s through the exit: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func TestTCPFetch(t *testing.T) {
	srv := newBodyServer(t)
	h := newHarness(t, loopbackOpts)
	tnet := h.client(1)
	got := fetch(t, tnet, srv.URL+"/x")
	if !bytes.Equal(got, srv.body("/x")) {
		t.Fatalf("body differs: got %d bytes, want %d", len(got), len(srv.body("/x")))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, ra := range srv.remotes {
		if host, _, _ := net.SplitHostPort(ra); host != "127.0.0.1" {
			t.Fatalf("server saw %s, want the exit's address 127.0.0.1", ra)
		}
	}
	if h.stat("dialed") == 0 {
		t.Fatal("dialed counter did not move")
	}
}

func TestTCPFetchIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	srv := &bodyServer{bodies: make(map[string][]byte)}
	srv.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	h := newHarness(t, loopbackOpts)
	got := fetch(t, h.client(1), srv.URL)
	if host, _, _ := net.SplitHostPort(string(got)); host != "::1" {
		t.Fatalf("server saw %q", got)
	}
}

// Two tunnels whose clients both call themselves 100.64.0.2 fetch
// different bodies at the same time; each gets its own.
func TestCollidingInnerAddresses(t *testing.T) {
	srv := newBodyServer(t)
	h := newHarness(t, loopbackOpts)
	nets := []*testClient{h.client(7), h.client(8)}
	var wg sync.WaitGroup
	got := make([][]byte, 2)
	for i, tnet := range nets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DialContext: tnet.DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("%s/p%d", srv.URL, i))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got[i], _ = io.ReadAll(resp.Body)
		}()
	}
	wg.Wait()
	for i := range got {
		want := srv.body(fmt.Sprintf("/p%d", i))
		if len(want) == 0 || !bytes.Equal(got[i], want) {
			t.Fatalf("tunnel %d: got %d bytes, want its own %d", i, len(got[i]), len(want))
		}
	}
	if m := h.stat("mappings"); m != 2 {
		t.Fatalf("mappings = %d, want 2 (one per tunnel)", m)
	}
}

// recordingDial wraps the exit's dialer and records every destination.
func recordingDial(e *Exit) *[]string {
	var mu sync.Mutex
	var dialed []string
	inner := e.dial
	e.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, network+" "+addr)
		mu.Unlock()
		return inner(ctx, network, addr)
	}
	return &dialed
}

// The default policy rejects 10.0.0.1: the client's connect fails within
// a second (RST from the exit), and nothing is dialed.
func TestPolicyRejectFailsFast(t *testing.T) {
	a, _ := New(nil)
	e := a.(*Exit)
	dialed := recordingDial(e)
	h := startHarness(t, e)
	tnet := h.client(1)
	for _, dst := range []string{"10.0.0.1:80", "[fd00::1]:80"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		c, err := tnet.DialContext(ctx, "tcp", dst)
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("connect to %s succeeded", dst)
		}
		if el := time.Since(start); el >= time.Second || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("connect to %s failed slowly (%v): %v", dst, el, err)
		}
	}
	// UDP to a rejected destination gets ICMP admin-prohibited.
	uc, err := tnet.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.1:53"))
	if err != nil {
		t.Fatal(err)
	}
	uc.Write([]byte("x"))
	uc.Close()
	if !h.waitStat("rejected_policy", func(v uint64) bool { return v >= 3 }) {
		t.Fatalf("rejected_policy = %d", h.stat("rejected_policy"))
	}
	if len(*dialed) != 0 || h.stat("dialed") != 0 || h.stat("mappings") != 0 {
		t.Fatalf("rejected destinations were dialed: %v (mappings %d)", *dialed, h.stat("mappings"))
	}
}

// Without allow_loopback the exit never reaches its own loopback, even
// with a policy that accepts everything.
func TestLoopbackGuard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	h := newHarness(t, map[string]string{OptPolicy: "accept *"})
	tnet := h.client(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	c, err := tnet.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c.Close()
		t.Fatal("connect to the exit's loopback succeeded")
	}
	if time.Since(start) >= time.Second {
		t.Fatalf("loopback connect failed slowly: %v", err)
	}
	select {
	case <-accepted:
		t.Fatal("the loopback listener saw a connection")
	case <-time.After(200 * time.Millisecond):
	}
	if h.stat("rejected_local") == 0 || h.stat("dialed") != 0 {
		t.Fatalf("stats %v", h.e.Stats())
	}
	for _, d := range []string{"127.0.0.1:80", "[::ffff:127.0.0.1]:80", "0.0.0.0:80", "[::]:80", "[::1]:80"} {
		if err := h.e.allowed("tcp", netip.MustParseAddrPort(d)); !errors.Is(err, errLocal) {
			t.Errorf("allowed(%s) = %v, want errLocal", d, err)
		}
	}
}

// udpEchoServer echoes datagrams on 127.0.0.1 until closed.
func udpEchoServer(t *testing.T) *net.UDPConn {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for range 1000 {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pc.WriteToUDP(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc
}

func udpRoundTrip(t *testing.T, tnet *testClient, dst netip.AddrPort, msg string) {
	t.Helper()
	c, err := tnet.DialUDPAddrPort(netip.AddrPort{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for try := range 5 { // UDP: a few tries, bounded
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			if string(buf[:n]) != msg {
				t.Fatalf("echo %q, want %q", buf[:n], msg)
			}
			return
		}
		t.Logf("try %d: %v", try, err)
	}
	t.Fatal("no UDP echo")
}

func TestUDPEcho(t *testing.T) {
	srv := udpEchoServer(t)
	h := newHarness(t, loopbackOpts)
	tnet := h.client(1)
	dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	udpRoundTrip(t, tnet, dst, "hello through the exit")
	udpRoundTrip(t, tnet, dst, strings.Repeat("big", 400))
}

func TestIdleTimeoutAndCloseFlow(t *testing.T) {
	srv := udpEchoServer(t)
	h := newHarness(t, map[string]string{
		OptAllowLoopback: "true", OptPolicy: "accept 127.0.0.0/8", OptIdleTimeout: "200ms",
	})
	tnet := h.client(1)
	udpRoundTrip(t, tnet, srv.LocalAddr().(*net.UDPAddr).AddrPort(), "a")
	if !h.waitStat("flows_open", func(v uint64) bool { return v == 0 }) ||
		!h.waitStat("mappings", func(v uint64) bool { return v == 0 }) {
		t.Fatalf("idle flow not expired: %v", h.e.Stats())
	}
	if h.stat("idle_closed") == 0 {
		t.Fatal("idle_closed did not move")
	}
}

// tcpHoldServer accepts connections on 127.0.0.1 and reports when each
// one ends.
func tcpHoldServer(t *testing.T) (net.Listener, chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 16 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err := io.Copy(c, c)
				c.Close()
				ended <- err
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln, ended
}

func TestCloseFlow(t *testing.T) {
	ln, ended := tcpHoldServer(t)
	h := newHarness(t, loopbackOpts)
	tnet := h.client(1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := tnet.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if h.stat("flows_open") != 1 || h.stat("mappings") != 1 || h.stat("tunnels") != 1 {
		t.Fatalf("before CloseFlow: %v", h.e.Stats())
	}
	if err := h.e.CloseFlow(1); err != nil {
		t.Fatal(err)
	}
	if h.stat("mappings") != 0 || h.stat("tunnels") != 0 {
		t.Fatalf("mappings survive CloseFlow: %v", h.e.Stats())
	}
	if !h.waitStat("flows_open", func(v uint64) bool { return v == 0 }) {
		t.Fatalf("flows survive CloseFlow: %v", h.e.Stats())
	}
	select {
	case <-ended: // the exit's outbound socket was closed
	case <-time.After(3 * time.Second):
		t.Fatal("server connection still open after CloseFlow")
	}
}

func TestFlowLimit(t *testing.T) {
	ln, _ := tcpHoldServer(t)
	opts := map[string]string{OptMaxFlows: "2"}
	for k, v := range loopbackOpts {
		opts[k] = v
	}
	h := newHarness(t, opts)
	tnet := h.client(1)
	ctx3, cancel3 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel3()
	for i := range 2 {
		c, err := tnet.DialContext(ctx3, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		defer c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := tnet.DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("third connection accepted with max_flows_per_tunnel=2")
	}
	if h.stat("rejected_limit") == 0 {
		t.Fatalf("stats %v", h.e.Stats())
	}
	// Another tunnel is not affected.
	c, err := h.client(2).DialContext(ctx3, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("other tunnel: %v", err)
	}
	c.Close()
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	switch host {
	case "fail.test":
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	var out []netip.Addr
	for _, a := range f[host] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func dnsQuery(t *testing.T, name string, typ dnsmessage.Type) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4242, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDNS(t *testing.T) {
	a, _ := New(nil)
	e := a.(*Exit)
	e.SetResolver(fakeResolver{
		"example.test": {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		"v4only.test":  {netip.MustParseAddr("192.0.2.11")},
	})
	dialed := recordingDial(e)
	h := startHarness(t, e)
	tnet := h.wgClient(1)

	// The client stack's own resolver goes through the tunnel.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := tnet.LookupContextHost(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(addrs, ",") != "192.0.2.10,2001:db8::10" && strings.Join(addrs, ",") != "2001:db8::10,192.0.2.10" {
		t.Fatalf("LookupHost = %v", addrs)
	}

	udp, err := tnet.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(DefaultDNSAddrs[0], 53))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tests := []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		n     int
	}{
		{"example.test.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"example.test.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 1},
		{"v4only.test.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 0},
		{"nx.test.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
		{"fail.test.", dnsmessage.TypeA, dnsmessage.RCodeServerFailure, 0},
		{"example.test.", dnsmessage.TypeMX, dnsmessage.RCodeNotImplemented, 0},
	}
	buf := make([]byte, 1500)
	for _, tc := range tests {
		udp.Write(dnsQuery(t, tc.name, tc.typ))
		udp.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := udp.Read(buf)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.name, tc.typ, err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.ID != 0x4242 || m.RCode != tc.rcode || len(m.Answers) != tc.n {
			t.Fatalf("%s %v: rcode %v answers %d", tc.name, tc.typ, m.RCode, len(m.Answers))
		}
		if tc.n == 1 && tc.typ == dnsmessage.TypeA && m.Answers[0].Body.(*dnsmessage.AResource).A != [4]byte{192, 0, 2, 10} {
			t.Fatalf("A = %v", m.Answers[0].Body)
		}
	}

	// DNS over TCP, to the IPv6 resolver address.
	c, err := tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(DefaultDNSAddrs[1], 53))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := dnsQuery(t, "example.test.", dnsmessage.TypeAAAA)
	c.Write(append([]byte{byte(len(q) >> 8), byte(len(q))}, q...))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, int(hdr[0])<<8|int(hdr[1]))
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil || len(m.Answers) != 1 ||
		m.Answers[0].Body.(*dnsmessage.AAAAResource).AAAA != netip.MustParseAddr("2001:db8::10").As16() {
		t.Fatalf("TCP AAAA: %v %+v", err, m)
	}
	if len(*dialed) != 0 {
		t.Fatalf("DNS dialed out: %v", *dialed)
	}
}

func TestOptions(t *testing.T) {
	for _, opts := range []map[string]string{
		{"bogus": "1"},
		{OptIdleTimeout: "-1s"},
		{OptMaxFlows: "0"},
		{OptPolicy: "allow *"},
		{OptAllowLoopback: "maybe"},
		{OptDNSAddr: "not-an-ip"},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%v) succeeded", opts)
		}
	}
	a, err := New(map[string]string{OptDNSAddr: "none", OptMaxFlows: "3", OptIdleTimeout: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != Name || a.Role() != adapter.RoleExit {
		t.Fatal("name or role")
	}
	if _, err := a.ReadPackets(nil); err == nil {
		t.Fatal("ReadPackets before Open succeeded")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Open(adapter.Config{}); !errors.Is(err, adapter.ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
}
