package tun

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openInNetns opens a TUN adapter named dev inside ns; cleanup closes it.
func openInNetns(t *testing.T, ns, dev, stateDir string, cfg adapter.Config) *Device {
	t.Helper()
	a, err := New(map[string]string{"name": dev, "state_dir": stateDir})
	if err != nil {
		t.Fatal(err)
	}
	inNetns(t, ns, func() {
		if err := a.Open(cfg); err != nil {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Cleanup(func() { a.Close() })
	return a.(*Device)
}

// startReader copies every packet the adapter reads to a channel until
// the adapter is closed.
func startReader(t *testing.T, a adapter.Adapter) <-chan []byte {
	ch := make(chan []byte, 256)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pkts := make([]adapter.Packet, adapter.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for {
			n, err := a.ReadPackets(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				if p.Flow != 0 {
					t.Errorf("packet in flow %d, want 0", p.Flow)
				}
				select {
				case ch <- bytes.Clone(p.Buf[:p.N]):
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { a.Close(); wg.Wait() })
	return ch
}

// awaitUDP waits for a UDP packet to dst among what the adapter reads.
func awaitUDP(t *testing.T, ch <-chan []byte, dst netip.AddrPort) (src netip.AddrPort, payload []byte) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-ch:
			s, d, pl, ok := parseUDP(p)
			if ok && d == dst {
				return s, pl
			}
		case <-timeout:
			t.Fatalf("no UDP packet to %s came out of the TUN", dst)
		}
	}
}

func TestOpenTrafficClose(t *testing.T) {
	requireRoot(t)
	ns, stateDir := newNetns(t), t.TempDir()
	a := openInNetns(t, ns, "tzt0", stateDir, adapter.Config{MTU: 1280})
	if a.Name() != Name || a.Role() != adapter.RoleClient || a.DeviceName() != "tzt0" {
		t.Fatalf("Name %q Role %q device %q", a.Name(), a.Role(), a.DeviceName())
	}

	link := ipCmd(t, "-n", ns, "link", "show", "tzt0")
	if !strings.Contains(link, "mtu 1280") || !strings.Contains(link, ",UP") {
		t.Errorf("link: %s", link)
	}
	addrs := ipCmd(t, "-n", ns, "addr", "show", "dev", "tzt0")
	for _, want := range []string{"inet 100.64.0.2/10", "inet6 fd7a:7a72:7a6e::2/64"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("addresses lack %q:\n%s", want, addrs)
		}
	}
	routes := ipCmd(t, "-n", ns, "route", "show") + ipCmd(t, "-n", ns, "-6", "route", "show")
	for _, want := range []string{"0.0.0.0/1 dev tzt0", "128.0.0.0/1 dev tzt0", "::/1 dev tzt0", "8000::/1 dev tzt0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes lack %q:\n%s", want, routes)
		}
	}
	if _, err := os.Stat(statePath(stateDir, "tzt0")); err != nil {
		t.Errorf("state file: %v", err)
	}

	ch := startReader(t, a)
	for _, tc := range []struct{ network, local, remote string }{
		{"udp4", "100.64.0.2", "198.18.0.7:9999"},
		{"udp6", "fd7a:7a72:7a6e::2", "[2001:db8::7]:9999"},
	} {
		remote := netip.MustParseAddrPort(tc.remote)
		var uc *net.UDPConn
		inNetns(t, ns, func() {
			var err error
			if uc, err = net.ListenUDP(tc.network, nil); err != nil {
				t.Fatal(err)
			}
		})
		defer uc.Close()
		if _, err := uc.WriteToUDPAddrPort([]byte("hello"), remote); err != nil {
			t.Fatalf("%s: send into the TUN: %v", tc.network, err)
		}
		src, payload := awaitUDP(t, ch, remote)
		if src.Addr() != netip.MustParseAddr(tc.local) || string(payload) != "hello" {
			t.Fatalf("%s: packet from %s payload %q", tc.network, src, payload)
		}
		// The reply, as the core would hand it over, in a larger buffer.
		reply := udpPacket(remote, src, []byte("world"))
		buf := append(reply, make([]byte, 24)...)
		if n, err := a.WritePackets([]adapter.Packet{{Buf: buf, N: len(reply)}}); err != nil || n != 1 {
			t.Fatalf("WritePackets: %d, %v", n, err)
		}
		uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 100)
		n, from, err := uc.ReadFromUDPAddrPort(got)
		if err != nil {
			t.Fatalf("%s: reply not delivered: %v", tc.network, err)
		}
		if string(got[:n]) != "world" || from.Addr().Unmap() != remote.Addr() || from.Port() != remote.Port() {
			t.Fatalf("%s: got %q from %s", tc.network, got[:n], from)
		}
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out, err := ipTry("-n", ns, "link", "show", "tzt0"); err == nil {
		t.Errorf("device still there after Close: %s", out)
	}
	if out := ipCmd(t, "-n", ns, "route", "show", "proto", "122") + ipCmd(t, "-n", ns, "-6", "route", "show", "proto", "122"); out != "" {
		t.Errorf("routes left after Close:\n%s", out)
	}
	if _, err := os.Stat(statePath(stateDir, "tzt0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Close: %v", err)
	}
	if _, err := a.ReadPackets([]adapter.Packet{{Buf: make([]byte, 1500)}}); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("ReadPackets after Close: %v", err)
	}
	if err := a.SetExclude(nil); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("SetExclude after Close: %v", err)
	}
}

// addUplink gives ns a veth "physical" interface with default routes,
// standing in for the link the node reaches its mimics through.
func addUplink(t *testing.T, ns string) {
	ipCmd(t, "-n", ns, "link", "add", "tzup0", "type", "veth", "peer", "name", "tzup1")
	ipCmd(t, "-n", ns, "link", "set", "tzup1", "up")
	ipCmd(t, "-n", ns, "addr", "add", "10.99.0.1/24", "dev", "tzup0")
	ipCmd(t, "-n", ns, "addr", "add", "2001:db8:99::1/64", "dev", "tzup0", "nodad")
	ipCmd(t, "-n", ns, "link", "set", "tzup0", "up")
	ipCmd(t, "-n", ns, "route", "add", "default", "via", "10.99.0.254")
	ipCmd(t, "-n", ns, "-6", "route", "add", "default", "via", "2001:db8:99::fe")
}

// routeVia reports the device `ip route get dst` picks, or "" if none.
func routeVia(t *testing.T, ns, dst string) string {
	t.Helper()
	out, err := ipTry("-n", ns, "route", "get", dst)
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	for i := range f[:len(f)-1] {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	return ""
}

func TestExclude(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	addUplink(t, ns)
	a := openInNetns(t, ns, "tzt1", t.TempDir(), adapter.Config{Exclude: []netip.Prefix{
		netip.MustParsePrefix("203.0.113.5/32"), netip.MustParsePrefix("2001:db8:77::5/128"),
	}})
	check := func(dst, want string) {
		t.Helper()
		if got := routeVia(t, ns, dst); got != want {
			t.Errorf("route get %s: dev %q, want %q", dst, got, want)
		}
	}
	check("203.0.113.5", "tzup0")
	check("2001:db8:77::5", "tzup0")
	check("203.0.113.6", "tzt1")
	check("2001:db8:77::6", "tzt1")
	if out := ipCmd(t, "-n", ns, "route", "get", "203.0.113.5"); !strings.Contains(out, "via 10.99.0.254") {
		t.Errorf("excluded route lost its gateway: %s", out)
	}

	if err := a.SetExclude([]netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}); err != nil {
		t.Fatal(err)
	}
	check("203.0.113.5", "tzt1")
	check("2001:db8:77::5", "tzt1")
	check("203.0.113.7", "tzup0")

	// Without any other route, an excluded prefix becomes unreachable
	// rather than falling into the TUN.
	ipCmd(t, "-n", ns, "route", "del", "default")
	if err := a.SetExclude([]netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")}); err != nil {
		t.Fatal(err)
	}
	check("198.51.100.9", "")
	if out := ipCmd(t, "-n", ns, "route", "show", "proto", "122"); !strings.Contains(out, "unreachable 198.51.100.9") {
		t.Errorf("no unreachable route:\n%s", out)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if out := ipCmd(t, "-n", ns, "route", "show", "proto", "122") + ipCmd(t, "-n", ns, "-6", "route", "show", "proto", "122"); out != "" {
		t.Errorf("routes left after Close:\n%s", out)
	}
	check("2001:db8:77::5", "tzup0") // the system's own default route is intact
}

// crash abandons a without Close, the way SIGKILL would, but makes the
// device persistent first so that it, too, is left behind.
func crash(t *testing.T, a *Device) {
	t.Helper()
	sc, err := a.dev.File().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	sc.Control(func(fd uintptr) {
		err = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 1)
	})
	if err != nil {
		t.Fatalf("TUNSETPERSIST: %v", err)
	}
	a.dev.Close()
	a.events.Wait()
	a.nl.close()
	a.mu.Lock()
	a.nl, a.opened = nil, false // its Close now does nothing
	a.mu.Unlock()
}

func leftovers(t *testing.T, ns, dev, stateDir string) (device, routes, stateFile bool) {
	_, err := ipTry("-n", ns, "link", "show", dev)
	device = err == nil
	routes = ipCmd(t, "-n", ns, "route", "show", "proto", "122")+ipCmd(t, "-n", ns, "-6", "route", "show", "proto", "122") != ""
	_, err = os.Stat(statePath(stateDir, dev))
	return device, routes, err == nil
}

func TestCrashRecovery(t *testing.T) {
	requireRoot(t)
	ns, stateDir := newNetns(t), t.TempDir()
	addUplink(t, ns)
	cfg := adapter.Config{Exclude: []netip.Prefix{netip.MustParsePrefix("203.0.113.5/32")}}

	crash(t, openInNetns(t, ns, "tzt2", stateDir, cfg))
	if d, r, s := leftovers(t, ns, "tzt2", stateDir); !d || !r || !s {
		t.Fatalf("crash left device=%v routes=%v state=%v, want all", d, r, s)
	}
	// The next run cleans up first and comes up normally.
	b := openInNetns(t, ns, "tzt2", stateDir, cfg)
	if got := routeVia(t, ns, "203.0.113.5"); got != "tzup0" {
		t.Errorf("after recovery 203.0.113.5 goes via %q", got)
	}
	if got := routeVia(t, ns, "203.0.113.6"); got != "tzt2" {
		t.Errorf("after recovery 203.0.113.6 goes via %q", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d, r, s := leftovers(t, ns, "tzt2", stateDir); d || r || s {
		t.Fatalf("after Close: device=%v routes=%v state=%v", d, r, s)
	}

	// Cleanup, as the core calls it after a killed plugin.
	crash(t, openInNetns(t, ns, "tzt2", stateDir, cfg))
	inNetns(t, ns, func() {
		if err := Cleanup(stateDir); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	})
	if d, r, s := leftovers(t, ns, "tzt2", stateDir); d || r || s {
		t.Fatalf("after Cleanup: device=%v routes=%v state=%v", d, r, s)
	}
	if err := Cleanup(filepath.Join(stateDir, "none")); err != nil {
		t.Errorf("Cleanup of an empty directory: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"name": "a/b"}, false},
		{map[string]string{"name": "averyveryverylongname"}, false},
		{map[string]string{"address": "100.64.0.2"}, false},
		{map[string]string{"address": "fd00::1/64"}, false},
		{map[string]string{"address6": ""}, true},
		{map[string]string{"address6": "", "address": ""}, false},
		{map[string]string{"routes": "10.0.0.0/8,nope"}, false},
		{map[string]string{"mtu": "1000"}, false},
		{map[string]string{"dns": "x"}, false},
		{map[string]string{"state_dir": ""}, false},
		{map[string]string{"bogus": "1"}, false},
	} {
		if _, err := New(tc.opts); (err == nil) != tc.ok {
			t.Errorf("New(%v): %v, want ok=%v", tc.opts, err, tc.ok)
		}
	}
}

func TestTunnelRoutes(t *testing.T) {
	pp := func(s string) []netip.Prefix { p, _ := parsePrefixes(s); return p }
	got := tunnelRoutes(pp("0.0.0.0/0,::/0,10.1.0.0/16"), pp("100.64.0.2/10"))
	want := pp("0.0.0.0/1,128.0.0.0/1,10.1.0.0/16")
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func FuzzFirstNexthop(f *testing.F) {
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 8, 0, 5, 0, 10, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) { firstNexthop(b) })
}
