package tunbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/host/netns"
)

// Yggdrasil's side: two namespaces (client, server) joined by one veth,
// one yggdrasil in each, peered over the veth by TCP, with no multicast
// discovery and no admin socket; its TUN device carries the client's
// traffic to the server's Yggdrasil address in one overlay hop.

const (
	yggPort      = 12345
	yggIfName    = "tzbygg0"
	yggClientNet = "10.77.0.1/30"
	yggServerNet = "10.77.0.2/30"
	yggServerIP  = "10.77.0.2"
)

// yggConfig edits the JSON of `yggdrasil -genconf -json` for one side:
// peers (client) or listen (server) on the veth, no multicast
// discovery, no admin socket, the TUN device's name and MTU (0 keeps the
// generated default).
func yggConfig(gen []byte, peers, listen []string, ifName string, mtu int) ([]byte, error) {
	var c map[string]any
	if err := json.Unmarshal(gen, &c); err != nil {
		return nil, fmt.Errorf("yggdrasil -genconf -json: %w", err)
	}
	if _, ok := c["PrivateKey"]; !ok {
		return nil, fmt.Errorf("yggdrasil -genconf -json: no PrivateKey in %.80q", gen)
	}
	c["Peers"] = nonNil(peers)
	c["Listen"] = nonNil(listen)
	c["MulticastInterfaces"] = []any{}
	c["AdminListen"] = "none"
	c["IfName"] = ifName
	if mtu > 0 {
		c["IfMTU"] = mtu
	}
	return json.MarshalIndent(c, "", "  ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// yggOverlay is one Yggdrasil network: MTU 0 is yggdrasil's default.
type yggOverlay struct {
	mtu int
}

func (y yggOverlay) name() string {
	if y.mtu > 0 {
		return fmt.Sprintf("yggdrasil-mtu%d", y.mtu)
	}
	return "yggdrasil"
}

// up builds the two namespaces, starts both yggdrasil and the iperf3
// server, and waits until the server's Yggdrasil address answers ping.
func (y yggOverlay) up(ctx context.Context, set *netns.Set, dir string, progress func(string, ...any)) (*running, error) {
	cli, err := set.Add(ctx, "yc")
	if err != nil {
		return nil, err
	}
	srv, err := set.Add(ctx, "ys")
	if err != nil {
		return nil, err
	}
	if err := netns.Veth(ctx, cli, "eth0", yggClientNet, srv, "eth0", yggServerNet); err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("tcp://%s:%d", yggServerIP, yggPort)
	var addr string
	var pids []int
	for _, side := range []struct {
		name, ns       string
		peers, listens []string
	}{{"server", srv, nil, []string{listen}}, {"client", cli, []string{listen}, nil}} {
		conf := filepath.Join(dir, "ygg-"+side.name+".json")
		if err := writeYggConfig(ctx, conf, side.peers, side.listens, y.mtu); err != nil {
			return nil, err
		}
		if side.name == "server" {
			out, err := exec.CommandContext(ctx, "yggdrasil", "-useconffile", conf, "-address").Output()
			if err != nil {
				return nil, fmt.Errorf("yggdrasil -address: %w", err)
			}
			addr = strings.TrimSpace(string(out))
		}
		p, err := set.Start("yggdrasil "+side.name, side.ns, filepath.Join(dir, "ygg-"+side.name+".log"),
			"yggdrasil", "-useconffile", conf, "-logto", "stdout")
		if err != nil {
			return nil, err
		}
		pids = append(pids, p.PID())
		if side.name == "server" {
			// A client that finds no listener backs off for seconds.
			if err := waitLog(ctx, filepath.Join(dir, "ygg-server.log"), "listener started", p, 10*time.Second); err != nil {
				return nil, fmt.Errorf("%s server: %w", y.name(), err)
			}
		}
	}
	if err := iperfServer(ctx, set, srv, dir); err != nil {
		return nil, err
	}
	progress("%s: waiting until %s answers through the overlay", y.name(), addr)
	if err := waitPing(ctx, cli, addr, 30*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "ygg-client.log"))
		return nil, fmt.Errorf("%s: %w; client log ends: %s", y.name(), err, tailLines(string(b), 5))
	}
	return &running{client: cli, target: addr, pids: func() []int { return pids }}, nil
}

func writeYggConfig(ctx context.Context, path string, peers, listen []string, mtu int) error {
	gen, err := exec.CommandContext(ctx, "yggdrasil", "-genconf", "-json").Output()
	if err != nil {
		return fmt.Errorf("yggdrasil -genconf -json: %w", err)
	}
	b, err := yggConfig(gen, peers, listen, yggIfName, mtu)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// waitLog waits until the log at path contains what, while p runs.
func waitLog(ctx context.Context, path, what string, p *netns.Proc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), what) {
			return nil
		}
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("no %q in its log within %v: %s", what, within, tailLines(string(b), 5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
