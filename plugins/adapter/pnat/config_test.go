package pnat

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// openWith opens a fresh Exit made from options with cfg and returns it
// and what it logged.
func openWith(t *testing.T, options map[string]string, cfg adapter.Config) (*Exit, string) {
	t.Helper()
	a, err := New(options)
	if err != nil {
		t.Fatal(err)
	}
	e := a.(*Exit)
	var logged bytes.Buffer
	e.log = slog.New(slog.NewTextHandler(&logged, nil))
	if err := e.Open(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, logged.String()
}

// The exit enforces the policy and answers the resolver addresses the
// core opened it with: one source of truth for both.
func TestPolicyAndDNSFromCore(t *testing.T) {
	pol, err := exitpolicy.Parse([]string{"accept tcp 192.0.2.0/24:443", "reject *"})
	if err != nil {
		t.Fatal(err)
	}
	dns := netip.MustParseAddr("100.64.7.53")
	e, logged := openWith(t, nil, adapter.Config{MTU: adapter.InnerMTU, ExitPolicy: pol, DNS: []netip.Addr{dns}})
	if e.Policy() != pol {
		t.Fatalf("policy in force %q, want the core's %q", e.Policy(), pol)
	}
	if err := e.allowed("tcp", netip.MustParseAddrPort("192.0.2.1:443")); err != nil {
		t.Errorf("the core's policy accepts 192.0.2.1:443, the exit refused: %v", err)
	}
	if err := e.allowed("tcp", netip.MustParseAddrPort("198.51.100.1:443")); err != errPolicy {
		t.Errorf("the core's policy rejects 198.51.100.1:443, the exit said %v", err)
	}
	if !e.isDNS(netip.AddrPortFrom(dns, 53)) || e.isDNS(netip.AddrPortFrom(adapter.DNSv4, 53)) {
		t.Errorf("resolver addresses %v, want only the core's %v", e.cfg.dnsAddrs, dns)
	}
	if logged != "" {
		t.Errorf("logged without deprecated options: %s", logged)
	}
}

func TestDefaultsWithoutCoreSettings(t *testing.T) {
	e, _ := openWith(t, nil, adapter.Config{})
	if e.Policy().String() != exitpolicy.Default().String() {
		t.Errorf("policy %q, want the default", e.Policy())
	}
	if !slices.Equal(e.cfg.dnsAddrs, adapter.DefaultDNS()) {
		t.Errorf("resolver addresses %v, want %v", e.cfg.dnsAddrs, adapter.DefaultDNS())
	}
}

// The old options still work for one version, win over the core's
// settings at the exit adapter (as before), and say they are deprecated.
func TestDeprecatedOptionsStillWinAndWarn(t *testing.T) {
	e, logged := openWith(t, map[string]string{OptPolicy: "accept *", OptDNSAddr: "none"},
		adapter.Config{ExitPolicy: exitpolicy.Default(), DNS: adapter.DefaultDNS()})
	if err := e.allowed("tcp", netip.MustParseAddrPort("192.0.2.99:80")); err != nil {
		t.Errorf("policy option \"accept *\" ignored: %v", err)
	}
	if len(e.cfg.dnsAddrs) != 0 {
		t.Errorf("dns_addr = none ignored: %v", e.cfg.dnsAddrs)
	}
	for _, opt := range []string{OptPolicy, OptDNSAddr} {
		if !strings.Contains(logged, "option "+opt+" is deprecated") {
			t.Errorf("no deprecation warning for %s in log:\n%s", opt, logged)
		}
	}
}
