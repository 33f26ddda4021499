package host

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// TestMain lets the test binary serve shipped transports as children, as
// the tarzan binary does ("plugin serve transport NAME"), so these tests
// start real plugin processes through Options.Exe.
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "plugin" && os.Args[2] == "serve" && os.Args[3] == builtin.KindTransport {
		transportplugin.Serve(builtin.Transports[os.Args[4]])
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "plugin" && os.Args[2] == "serve" && os.Args[3] == builtin.KindAdapter {
		adapterplugin.Serve(builtin.Adapters[os.Args[4]])
		return
	}
	os.Exit(m.Run())
}

// testConfig is a node on loopback with builtin plugins in process, a
// fresh identity and its own data directory.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.File = filepath.Join(dir, "node.toml")
	cfg.Node.Identity = filepath.Join(dir, "identity.key")
	if err := id.Save(cfg.Node.Identity); err != nil {
		t.Fatal(err)
	}
	cfg.Node.DataDir = dir
	cfg.Transport.Listen = netip.MustParseAddrPort("127.0.0.1:0")
	cfg.Transport.InProcess = true
	cfg.Discovery.InProcess = true
	cfg.Cover.InProcess = true
	return cfg
}

// children lists the live child processes of this test process (Linux /proc).
func children(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	self := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == self && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// waitNoChildren waits (generously: a killed child may take a moment to
// be reaped) until this process has no live children.
func waitNoChildren(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := children(t)
		if len(c) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin children still running 20 s after Start failed: pids %v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartStopInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := testConfig(t)
	h, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Node().Addr().IsValid() || h.ControlAddr() == nil {
		t.Fatalf("running host: node addr %v, control %v", h.Node().Addr(), h.ControlAddr())
	}
	b, err := os.ReadFile(filepath.Join(cfg.Node.DataDir, ControlAddrFile))
	if err != nil || strings.TrimSpace(string(b)) != h.ControlAddr().String() {
		t.Fatalf("control.addr = %q, %v; want %s", b, err, h.ControlAddr())
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, err := os.Stat(filepath.Join(cfg.Node.DataDir, ControlAddrFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control.addr left behind after Close: %v", err)
	}
	if c, err := net.Dial("tcp", h.ControlAddr().String()); err == nil {
		c.Close()
		t.Fatal("control API still answers after Close")
	}
}

func TestContextEndStopsHost(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	h, err := Start(ctx, testConfig(t), Options{NoControl: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-h.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("host still running 30 s after its context ended")
	}
	if err := h.Err(); err != nil {
		t.Fatalf("Err after a clean stop: %v", err)
	}
	h.Close()
}

func TestStartFailsClearly(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(*config.Config)
		want   string
	}{
		{"unknown discovery", func(c *config.Config) { c.Discovery.Name = "nosuch" }, `discovery "nosuch"`},
		{"unknown cover", func(c *config.Config) { c.Cover.Name = "nosuch" }, `cover plugin "nosuch" is not shipped`},
		{"missing identity", func(c *config.Config) { c.Node.Identity = filepath.Join(t.TempDir(), "none.key") }, "create one with 'tarzan init'"},
		{"bad exit policy", func(c *config.Config) {
			c.Node.Exit = true
			c.Exit.InProcess = true
			c.Exit.Policy = []string{"accept nonsense"}
		}, "exit.policy"},
		{"remote control", func(c *config.Config) { c.Node.Control = "192.0.2.1:0" }, "not a loopback address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.break_(cfg)
			h, err := Start(context.Background(), cfg, Options{})
			if err == nil {
				h.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestStartFailureLeavesNothing: Start fails at different points with
// the transport already running as a child process; afterwards no child
// runs, and the node's UDP port and control.addr are free again.
func TestStartFailureLeavesNothing(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name   string
		break_ func(*config.Config)
		want   string
	}{
		// After the node started: the control port is taken.
		{"control port taken", func(c *config.Config) { c.Node.Control = busy.Addr().String() }, "control: listening on"},
		// While opening plugins: the discovery is not shipped.
		{"missing discovery", func(c *config.Config) { c.Discovery.Name = "nosuch" }, `discovery plugin "nosuch" is not shipped`},
		// While opening plugins: an external cover that is not there.
		{"missing external cover", func(c *config.Config) {
			c.Cover.Path, c.Cover.SHA256 = filepath.Join(t.TempDir(), "none"), strings.Repeat("ab", 32)
		}, "cover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			port := udp.LocalAddr().(*net.UDPAddr).AddrPort()
			udp.Close()
			cfg := testConfig(t)
			cfg.Transport.InProcess = false // a child: "plugin serve transport udp"
			cfg.Transport.Listen = port
			tc.break_(cfg)
			h, err := Start(context.Background(), cfg, Options{Exe: exe})
			if err == nil {
				h.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			waitNoChildren(t)
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(port))
			if err != nil {
				t.Fatalf("node's UDP port %v still bound after Start failed: %v", port, err)
			}
			c.Close()
			if _, err := os.Stat(filepath.Join(cfg.Node.DataDir, ControlAddrFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("control.addr left behind: %v", err)
			}
		})
	}
}

// TestChildPluginsStopWithHost: a host whose transport runs as a child
// leaves no child after Close.
func TestChildPluginsStopWithHost(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Transport.InProcess = false
	h, err := Start(context.Background(), cfg, Options{Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	if len(children(t)) == 0 {
		t.Fatal("the transport is not running as a child process")
	}
	h.Close()
	waitNoChildren(t)
}
