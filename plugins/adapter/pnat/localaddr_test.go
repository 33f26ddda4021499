package pnat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// netnsChildEnv marks a test binary re-run inside its own network
// namespace (unshare -n): there the test may add addresses freely without
// touching the host's network.
const netnsChildEnv = "PNAT_TEST_NETNS_CHILD"

// inOwnNetns re-runs the calling test inside a fresh network namespace and
// reports whether the caller is that child (and should run the body). The
// parent passes or fails with the child; without unshare or the privilege
// for it, the test is skipped.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) == t.Name() {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not found:", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not found:", err)
	}
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", os.Args[0],
		"-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil {
		t.Fatalf("child test failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child did not run %s", t.Name())
	}
	return false
}

func ipRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestNewLocalAddressRefusedAtOnce is the attack on the exit's list of its
// own addresses: the exit host gains an address (DHCP renewal, a new
// interface, a container's veth) after pnat read the list, and a service
// listens on it. With the default policy, which accepts any public
// address, a client asks for that address at once. The exit must refuse
// it (rejected_local) rather than dial its own host until the next rescan.
func TestNewLocalAddressRefusedAtOnce(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	ipRun(t, "link", "set", "lo", "up")
	h := newHarness(t, nil) // default policy, guard on
	tnet := h.client(1)

	// Public-looking addresses, added after Open read the host's list.
	for _, a := range []string{"11.77.0.1/32", "2a00:77::1/128"} {
		ipRun(t, "addr", "add", a, "dev", "lo")
	}
	for _, addr := range []string{"11.77.0.1", "2a00:77::1"} {
		ip := netip.MustParseAddr(addr)
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan string, 4)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c.RemoteAddr().String()
				c.Close()
			}
		}()
		before := h.stat("rejected_local")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := tnet.DialContext(ctx, "tcp", ln.Addr().String())
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("TCP to the exit's new address %s went through", ln.Addr())
		}
		select {
		case from := <-accepted:
			t.Errorf("a service on the exit's new address %s was reached (from %s)", ln.Addr(), from)
		case <-time.After(100 * time.Millisecond):
		}
		if h.stat("rejected_local") == before {
			t.Errorf("refusal of %s not counted as rejected_local (stats %v)", ip, h.e.Stats())
		}

		// UDP likewise: no datagram reaches a socket on the new address.
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		uc, err := tnet.DialUDPAddrPort(netip.AddrPort{}, netip.MustParseAddrPort(pc.LocalAddr().String()))
		if err != nil {
			t.Fatal(err)
		}
		uc.Write([]byte("hello"))
		uc.Close()
		pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, from, err := pc.ReadFrom(make([]byte, 64)); err == nil {
			t.Errorf("a UDP socket on the exit's new address %s got %d bytes from %s", pc.LocalAddr(), n, from)
		}
	}
}

// TestLocalGuardJudgesEmbeddedIPv4: with a policy that accepts everything,
// only the local-destination guard stands between a client and the exit
// host. IPv6 forms that carry a loopback IPv4 address reach the host (its
// sit0 for ::a.b.c.d and 6to4, a NAT64 or Teredo relay on the host), so
// the guard refuses them as it refuses 127.0.0.1.
func TestLocalGuardJudgesEmbeddedIPv4(t *testing.T) {
	h := newHarness(t, map[string]string{OptPolicy: "accept *"})
	for _, d := range []string{
		"[::127.0.0.1]:80",                 // IPv4-compatible
		"[::ffff:0:7f00:1]:80",             // IPv4-translated
		"[64:ff9b::7f00:1]:80",             // NAT64
		"[2002:7f00:1::1]:80",              // 6to4
		"[2001:0:7f00:1::f7f7:f7f7]:80",    // Teredo server
		"[2001:0:4136:e378::80ff:fffe]:80", // Teredo client
		"[2a00:1450:1:2:0:5efe:7f00:1]:80", // ISATAP
		"[2a00:1450:1:2:200:5efe:0:0]:80",  // ISATAP of 0.0.0.0
	} {
		if err := h.e.allowed("tcp", netip.MustParseAddrPort(d)); !errors.Is(err, errLocal) {
			t.Errorf("allowed(%s) = %v, want errLocal", d, err)
		}
	}
	if err := h.e.allowed("tcp", netip.MustParseAddrPort("[2002:808:808::1]:80")); err != nil {
		t.Errorf("6to4 of a public address refused: %v", err)
	}
}

// The routing-table query answers like `ip route get`: loopback and the
// host's own addresses are local, a documentation address is not.
func TestRouteIsLocal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("route lookup is Linux-only")
	}
	want := map[netip.Addr]bool{
		netip.MustParseAddr("127.0.0.1"):   true,
		netip.MustParseAddr("127.9.9.9"):   true,
		netip.MustParseAddr("192.0.2.1"):   false,
		netip.MustParseAddr("::1"):         true,
		netip.MustParseAddr("2001:db8::1"): false,
	}
	for a := range hostAddrs() {
		if !a.IsLinkLocalUnicast() { // link-local needs a zone to look up
			want[a] = true
		}
	}
	t.Logf("checked: %v", want)
	for a, local := range want {
		got, err := routeIsLocal(a)
		if err != nil {
			t.Fatalf("routeIsLocal(%s): %v", a, err)
		}
		if got != local {
			t.Errorf("routeIsLocal(%s) = %v, want %v", a, got, local)
		}
	}
}

// When the routing table cannot be asked, the dial-time guard reads the
// host's addresses afresh instead of trusting the cached list.
func TestDialGuardFallsBackToFreshAddresses(t *testing.T) {
	a, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := a.(*Exit)
	fresh := netip.MustParseAddr("11.77.0.9")
	var mu sync.Mutex
	hostHas := false
	e.routeLocal = func(netip.Addr) (bool, error) { return false, errors.New("netlink refused") }
	e.hostAddrs = func() map[netip.Addr]bool {
		mu.Lock()
		defer mu.Unlock()
		return map[netip.Addr]bool{fresh: hostHas}
	}
	h := startHarness(t, e)
	dst := netip.AddrPortFrom(fresh, 80)
	if err := h.e.checkDial(dst); err != nil {
		t.Fatalf("checkDial(%s) before the host has it: %v", dst, err)
	}
	mu.Lock()
	hostHas = true // the host gains the address; no rescan has run
	mu.Unlock()
	if err := h.e.checkDial(dst); !errors.Is(err, errLocal) {
		t.Fatalf("checkDial(%s) after the host gained it = %v, want errLocal", dst, err)
	}
	// Carried in 6to4, it is refused as well.
	if err := h.e.checkDial(netip.MustParseAddrPort("[2002:b4d:9::1]:80")); !errors.Is(err, errLocal) {
		t.Fatalf("checkDial(6to4 of %s) = %v, want errLocal", fresh, err)
	}
	if h.stat("rejected_local") != 2 {
		t.Fatalf("rejected_local = %d, want 2", h.stat("rejected_local"))
	}
}

// BenchmarkRouteIsLocal is the dial-time guard's cost, paid once per
// outbound connection or UDP flow.
func BenchmarkRouteIsLocal(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("route lookup is Linux-only")
	}
	a := netip.MustParseAddr("193.0.14.129")
	for b.Loop() {
		if _, err := routeIsLocal(a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostAddrs is the fallback's cost (and the janitor's rescan).
func BenchmarkHostAddrs(b *testing.B) {
	for b.Loop() {
		hostAddrs()
	}
}
