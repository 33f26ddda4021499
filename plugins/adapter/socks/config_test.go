package socks

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// The stacks resolve names at the node's resolver address (Config.DNS),
// unless the dns option names another.
func TestResolverFromCore(t *testing.T) {
	nodeDNS := []netip.Addr{netip.MustParseAddr("100.64.7.53"), netip.MustParseAddr("fd00::53")}
	for _, tc := range []struct {
		name string
		opts map[string]string
		cfg  adapter.Config
		want []netip.Addr
	}{
		{"node's", nil, adapter.Config{DNS: nodeDNS}, nodeDNS[:1]},
		{"default", nil, adapter.Config{}, []netip.Addr{adapter.DNSv4}},
		{"option", map[string]string{"dns": "100.64.0.99"}, adapter.Config{DNS: nodeDNS}, []netip.Addr{netip.MustParseAddr("100.64.0.99")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{"listen": "127.0.0.1:0"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			a, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Open(tc.cfg); err != nil {
				t.Fatal(err)
			}
			if got := a.(*Proxy).opts.dns; !slices.Equal(got, tc.want) {
				t.Fatalf("resolver %v, want %v", got, tc.want)
			}
		})
	}
}
