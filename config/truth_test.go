package config

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// tunnels.dns defaults to the SDK's addresses, and a bad value, like a bad
// deprecated pnat option, is named with its file, line and key.
func TestDNSAndDeprecatedExitOptions(t *testing.T) {
	c, err := Parse("node.toml", []byte("[tunnels]\ndns = [\"100.64.9.53\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("100.64.9.53")}; !slices.Equal(c.Tunnels.DNS, want) {
		t.Errorf("tunnels.dns = %v, want %v", c.Tunnels.DNS, want)
	}
	if !slices.Equal(Default().Tunnels.DNS, adapter.DefaultDNS()) {
		t.Errorf("default tunnels.dns = %v", Default().Tunnels.DNS)
	}
	for _, tc := range []struct{ file, want string }{
		{"[tunnels]\ndns = [\"resolver\"]\n", `node.toml:2: tunnels.dns: element 1: "resolver" is not an IP address`},
		{"[tunnels]\n\ndns = []\n", `node.toml:3: tunnels.dns: is empty: clients would have no resolver inside the tunnel`},
		{"[tunnels]\ndns = [\"127.0.0.1\"]\n", `node.toml:2: tunnels.dns: 127.0.0.1 cannot be a resolver address inside the tunnel`},
		{"[exit]\nname = \"pnat\"\n[exit.options]\npolicy = \"allow *\"\n",
			`node.toml:4: exit.options.policy: exitpolicy: syntax error: rule 1 ("allow *"): bad token "allow": want accept or reject (deprecated: use exit.policy)`},
		{"[exit.options]\n\ndns_addr = \"100.64.0.53,x\"\n", `node.toml:3: exit.options.dns_addr: "x" is not an IP address (deprecated: use tunnels.dns)`},
	} {
		_, err := Parse("node.toml", []byte(tc.file))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.file, err, tc.want)
		}
	}
	// A deprecated option with a good value still loads.
	if _, err := Parse("node.toml", []byte("[exit.options]\npolicy = \"accept *:443; reject *\"\ndns_addr = \"none\"\n")); err != nil {
		t.Errorf("good deprecated options refused: %v", err)
	}
}
