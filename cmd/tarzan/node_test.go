package main

import (
	"crypto/rand"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// node.toml's cover.loop_* keys reach node.Options, and what config
// accepts node.New accepts too.
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
			o := configOptions(cfg)
			if o.LoopTimeout != tc.timeout || o.LoopTunnels != tc.tunnels || o.LoopWindow != tc.window || o.LoopAlertLoss != tc.alert {
				t.Errorf("node.Options loop fields %v, %d, %d, %v; want %v, %d, %d, %v",
					o.LoopTimeout, o.LoopTunnels, o.LoopWindow, o.LoopAlertLoss, tc.timeout, tc.tunnels, tc.window, tc.alert)
			}
			if o.MimicCount != cfg.Mimics.Count || o.EpochLength != cfg.Mimics.Epoch || o.TunnelHops != cfg.Tunnels.Hops ||
				o.TunnelIdleTimeout != cfg.Tunnels.IdleTimeout || o.Exit != cfg.Node.Exit {
				t.Errorf("configOptions lost a setting: %+v from %+v", o, cfg)
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

// A bad value stops `tarzan node` before anything starts, naming the file,
// the line and the key.
func TestRunNodeBadLoopKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(path, []byte("[cover]\nname = \"poisson\"\nloop_alert_loss = 1.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runNode([]string{"-c", path})
	if !errors.Is(err, config.ErrInvalid) || !strings.HasPrefix(err.Error(), path+":3: cover.loop_alert_loss: 1.5 is out of range") {
		t.Errorf("got %v, want %s:3: cover.loop_alert_loss: ...", err, path)
	}
}
