package initcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/config"
)

// Every role writes a file that loads back, validates and has the role.
func TestRolesWriteValidConfigs(t *testing.T) {
	cases := []struct {
		name  string
		roles Roles
		check func(*config.Config) bool
	}{
		{"socks", Roles{Listen: "127.1.0.1:7700", SOCKS: "127.1.0.1:1080", Bootstrap: []string{"127.2.0.1:7700"}},
			func(c *config.Config) bool {
				return c.Adapter.Name == "socks" && c.Adapter.Options["listen"] == "127.1.0.1:1080" && !c.Node.Exit &&
					c.Discovery.Name == "gossip" && c.Discovery.Options["bootstrap"] == "127.2.0.1:7700"
			}},
		{"tun", Roles{TUN: true, Peers: []string{"192.0.2.1:7700", "192.0.2.2:7700"}},
			func(c *config.Config) bool {
				return c.Adapter.Name == "tun" && c.Discovery.Name == "static" && c.Discovery.Options["peers"] == "192.0.2.1:7700,192.0.2.2:7700"
			}},
		{"exit", Roles{Listen: "127.2.0.1:7700", Exit: true, Bootstrap: []string{"127.2.0.1:7700", "127.3.0.1:7700"}, TestServer: "127.0.0.1:8000"},
			func(c *config.Config) bool {
				return c.Node.Exit && c.Adapter.Name == "" && c.Exit.Options["alias"] == "198.18.0.1=127.0.0.1" &&
					c.Exit.Options["bind"] == "127.2.0.1" && c.Exit.Policy[0] == "accept 198.18.0.1/32:8000"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.roles.Config()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path, _, err := Write(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := config.Load(path)
			if err != nil {
				t.Fatalf("the written file does not load: %v", err)
			}
			if err := back.Validate(); err != nil {
				t.Fatal(err)
			}
			if !tc.check(back) {
				t.Fatalf("role not in the file: %+v %+v %+v", back.Node, back.Adapter, back.Discovery)
			}
			if _, _, err := Write(dir, cfg); err == nil {
				t.Fatal("Write overwrote an existing node.toml")
			}
		})
	}
}

// Address lists are written as TOML arrays.
func TestListsAreTOMLArrays(t *testing.T) {
	cfg, err := Roles{Bootstrap: []string{"127.2.0.1:7700", "127.3.0.1:7700"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	path, _, err := Write(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `bootstrap = ["127.2.0.1:7700", "127.3.0.1:7700"]`) {
		t.Fatalf("bootstrap not written as an array:\n%s", b)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(path), "identity.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity key: %v %v", fi, err)
	}
}

func TestBadRolesAreRefused(t *testing.T) {
	for _, r := range []Roles{
		{SOCKS: "127.0.0.1:1080", TUN: true},
		{Bootstrap: []string{"a:1"}},
		{Bootstrap: []string{"127.0.0.1:1"}, Peers: []string{"127.0.0.1:2"}},
		{TestServer: "127.0.0.1:8000"},
		{Exit: true, TestServer: "192.0.2.1:80"},
		{SOCKS: "localhost"},
	} {
		if _, err := r.Config(); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
}
