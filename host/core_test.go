package host

import (
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// Moved whole from cmd/tarzan/node_test.go with the code they test
// (configOptions is nodeOptions, checkAES(cfg, hw) is checkAESOn).

// node.toml's cover.loop_* keys reach loopcover.Options, and what config
// accepts node.New and loopcover.New accept too.
func TestConfigOptionsLoop(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		timeout    time.Duration
		tunnels    int
		window     int
		alert      float64
	}{
		{"absent", "[cover]\nname = \"poisson\"\n[cover.options]\nloop_rate = \"2\"\n", 5 * time.Second, 2, 20, 0.5},
		{"set", "[cover]\nname = \"poisson\"\nloop_timeout = \"2s\"\nloop_tunnels = 3\nloop_window = 40\nloop_alert_loss = 0.3\n", 2 * time.Second, 3, 40, 0.3},
		{"upper bounds", "[cover]\nloop_timeout = \"1h\"\nloop_tunnels = 16\nloop_window = 10000\nloop_alert_loss = 1\n", time.Hour, 16, 10000, 1},
		{"lower bounds", "[cover]\nloop_timeout = \"1ns\"\nloop_tunnels = 1\nloop_window = 1\nloop_alert_loss = 1e-9\n", 1, 1, 1, 1e-9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			o := nodeOptions(cfg)
			ipo, lo := serviceOptions(cfg)
			if lo.Timeout != tc.timeout || lo.Tunnels != tc.tunnels || lo.Window != tc.window || lo.AlertLoss != tc.alert {
				t.Errorf("loopcover.Options fields %v, %d, %d, %v; want %v, %d, %d, %v",
					lo.Timeout, lo.Tunnels, lo.Window, lo.AlertLoss, tc.timeout, tc.tunnels, tc.window, tc.alert)
			}
			if _, err := loopcover.New(lo); err != nil {
				t.Fatalf("loopcover.New refuses what config accepted: %v", err)
			}
			if o.MimicCount != cfg.Mimics.Count || o.EpochLength != cfg.Mimics.Epoch || ipo.TunnelHops != cfg.Tunnels.Hops || len(ipo.DNSAddrs) != len(cfg.Tunnels.DNS) || lo.TunnelHops != cfg.Tunnels.Hops ||
				o.TunnelIdleTimeout != cfg.Tunnels.IdleTimeout || o.Exit != cfg.Node.Exit {
				t.Errorf("nodeOptions lost a setting: %+v from %+v", o, cfg)
			}
			o.Identity, _ = identity.Generate(rand.Reader)
			o.Transport = transporttest.NewNetwork().NewTransport()
			o.Listen = netip.MustParseAddrPort("127.0.0.1:7700")
			o.Discovery = discoverytest.New()
			n, err := node.New(o)
			if err != nil {
				t.Fatalf("node.New refuses what config accepted: %v", err)
			}
			n.Close()
		})
	}
}

// node.toml's [limits] keys and node.allow_variable_time_aes reach
// node.Options, and what config accepts node.New accepts too, switched-off
// limits and the bounds included.
func TestConfigOptionsLimits(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
	}{
		{"absent", ""},
		{"set", "[node]\nallow_variable_time_aes = true\n[limits]\ncircuits_per_link = 64\ncircuits = 4096\ncreate_rate = 16.5\n" +
			"probe_rate = 0.5\nprobe_burst = 4\nprobe_global_rate = 50\nprobe_global_burst = 100\n" +
			"handshake_rate = 1\nhandshake_burst = 2\nlimiter_sources = 128\npeer_silence = \"30m\"\n"},
		{"lower bounds", "[limits]\ncircuits_per_link = 1\ncircuits = 1\ncreate_rate = 1e-3\nprobe_rate = 1e-9\nprobe_burst = 1\n" +
			"probe_global_rate = 1e-9\nprobe_global_burst = 1\nhandshake_rate = 1e-9\nhandshake_burst = 1\nlimiter_sources = 1\npeer_silence = \"1s\"\n"},
		{"upper bounds", "[limits]\ncircuits_per_link = 1048576\ncircuits = 1048576\ncreate_rate = 1000000\n"},
		{"switched off", "[limits]\nprobe_rate = -1.0\nprobe_global_rate = -1.0\nhandshake_rate = -1.0\npeer_silence = \"-1s\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			o := nodeOptions(cfg)
			l := cfg.Limits
			want := node.AdmissionLimits{
				ProbeRate: l.ProbeRate, ProbeBurst: l.ProbeBurst, ProbeGlobalRate: l.ProbeGlobalRate, ProbeGlobalBurst: l.ProbeGlobalBurst,
				HandshakeRate: l.HandshakeRate, HandshakeBurst: l.HandshakeBurst, LimiterSources: l.LimiterSources, PeerSilence: l.PeerSilence,
			}
			if o.MaxCircuitsPerLink != l.CircuitsPerLink || o.MaxCircuits != l.Circuits || o.CreateRate != l.CreateRate ||
				o.AdmissionLimits != want || o.AllowVariableTimeAES != cfg.Node.AllowVariableTimeAES {
				t.Errorf("node.Options %d, %d, %v, %+v, aes %v\nfrom %+v, aes %v",
					o.MaxCircuitsPerLink, o.MaxCircuits, o.CreateRate, o.AdmissionLimits, o.AllowVariableTimeAES, l, cfg.Node.AllowVariableTimeAES)
			}
			if tc.name == "absent" && (o.MaxCircuitsPerLink != node.DefaultMaxCircuitsPerLink || o.MaxCircuits != node.DefaultMaxCircuits ||
				o.CreateRate != node.DefaultCreateRate || o.ProbeRate != node.DefaultProbeRate || o.PeerSilence != node.DefaultPeerSilence) {
				t.Errorf("defaults: node.Options limits %d, %d, %v, %+v", o.MaxCircuitsPerLink, o.MaxCircuits, o.CreateRate, o.AdmissionLimits)
			}
			newTestNode(t, o)
		})
	}
}

// config's floor on limits.peer_silence is core/node's (unexported) one.
func TestConfigPeerSilenceFloor(t *testing.T) {
	o := nodeOptions(config.Default())
	o.PeerSilence = time.Second - time.Nanosecond
	if n, err := newNode(o); err == nil {
		n.Close()
		t.Errorf("node.New accepts PeerSilence %v, which config refuses", o.PeerSilence)
	}
	o.PeerSilence = time.Second
	newTestNode(t, o)
}

// Without AES instructions `tarzan node` stops before any plugin starts,
// naming the key that overrides it.
func TestConfigCheckAES(t *testing.T) {
	cfg := config.Default()
	cfg.File = "node.toml"
	if err := checkAESOn(cfg, true); err != nil {
		t.Errorf("with hardware AES: %v", err)
	}
	err := checkAESOn(cfg, false)
	if err == nil || !strings.HasPrefix(err.Error(), "node.toml: ") || !strings.Contains(err.Error(), "node.allow_variable_time_aes = true") {
		t.Errorf("without hardware AES: %v, want an error naming node.allow_variable_time_aes", err)
	}
	cfg.Node.AllowVariableTimeAES = true
	if err := checkAESOn(cfg, false); err != nil {
		t.Errorf("without hardware AES, allowed: %v", err)
	}
}

// newNode fills in what nodeOptions leaves to startCore and calls node.New.
func newNode(o node.Options) (*node.Node, error) {
	o.Identity, _ = identity.Generate(rand.Reader)
	o.Transport = transporttest.NewNetwork().NewTransport()
	o.Listen = netip.MustParseAddrPort("127.0.0.1:7700")
	o.Discovery = discoverytest.New()
	return node.New(o)
}

func newTestNode(t *testing.T, o node.Options) {
	t.Helper()
	n, err := newNode(o)
	if err != nil {
		t.Fatalf("node.New refuses what config accepted: %v", err)
	}
	n.Close()
}
