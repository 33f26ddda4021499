package pnat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// A reloaded exit policy decides the next packet; with the deprecated
// option "policy" set the adapter refuses a reload, saying why, and keeps
// enforcing the option's policy.
func TestSetExitPolicy(t *testing.T) {
	dst := netip.MustParseAddrPort("192.0.2.7:443")
	allow443, err := exitpolicy.Parse([]string{"accept 192.0.2.0/24:443", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}

	a, err := New(map[string]string{OptDNSAddr: "none"})
	if err != nil {
		t.Fatal(err)
	}
	e := a.(*Exit)
	e.cfg.policy, _ = exitpolicy.Parse([]string{"reject *:*"}) // what Open would have set
	e.hostAddrs = func() map[netip.Addr]bool { return map[netip.Addr]bool{} }
	e.routeLocal = func(netip.Addr) (bool, error) { return false, nil }
	if err := e.allowed("tcp", dst); err != errPolicy {
		t.Fatalf("before the reload: %v, want the policy's refusal", err)
	}
	if err := e.SetExitPolicy(allow443); err != nil {
		t.Fatal(err)
	}
	if err := e.allowed("tcp", dst); err != nil {
		t.Fatalf("after the reload %v is still refused: %v", dst, err)
	}

	b, err := New(map[string]string{OptDNSAddr: "none", OptPolicy: "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.(*Exit).SetExitPolicy(allow443)
	if err == nil || !strings.Contains(err.Error(), `"policy"`) {
		t.Fatalf("SetExitPolicy with the deprecated option set: %v, want a refusal naming the option", err)
	}
	if ok, _ := b.(*Exit).Policy().Allows("tcp", dst); ok {
		t.Fatal("a refused reload changed the policy")
	}
}
