package adapterplugin_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// echo is the child's adapter: every packet written comes back to be
// read, and CloseFlow(f) sends back a packet "closed" on flow f.
type echo struct{ *adaptertest.Fake }

func (e echo) Open(cfg adapter.Config) error {
	go func() {
		for p := range e.Written() {
			e.Inject(p)
		}
	}()
	return e.Fake.Open(cfg)
}

func (e echo) CloseFlow(flow uint64) error {
	e.Inject(adapter.Packet{Buf: []byte("closed"), N: 6, Flow: flow})
	return e.Fake.CloseFlow(flow)
}

// reporter is the child's adapter in mode "config": Open sends back, on
// flow 1, what it was opened with, so the test sees what crossed.
type reporter struct{ *adaptertest.Fake }

func (r reporter) Open(cfg adapter.Config) error {
	msg := fmt.Sprintf("mtu=%d dns=%v policy=%v(%s)", cfg.MTU, cfg.DNS, cfg.ExitPolicy != nil, cfg.ExitPolicy)
	r.Inject(adapter.Packet{Buf: []byte(msg), N: len(msg), Flow: 1})
	return r.Fake.Open(cfg)
}

func TestMain(m *testing.M) {
	plugintest.Main(m, func(mode string) {
		newEcho := func(map[string]string) (adapter.Adapter, error) {
			return echo{adaptertest.New(adapter.RoleExit)}, nil
		}
		switch mode {
		case "socketonly":
			adapterplugin.ServeSocketOnly(newEcho)
			return
		case "hostile":
			adapterplugin.ServeHostile(newEcho)
			return
		}
		adapterplugin.Serve(func(map[string]string) (adapter.Adapter, error) {
			switch mode {
			case "config":
				return reporter{adaptertest.New(adapter.RoleExit)}, nil
			case "policy":
				return policyTaker{adaptertest.New(adapter.RoleExit)}, nil
			case "sink":
				return &sink{Fake: adaptertest.New(adapter.RoleExit)}, nil
			case "slog":
				slog.Default().Warn("adapter logs through slog.Default", "key", "value")
			}
			return echo{adaptertest.New(adapter.RoleExit)}, nil
		})
	})
}

// The node's DNS addresses and exit policy reach a plugin child whole:
// the child enforces the rules the core enforces.
func TestConfigCrossesToChild(t *testing.T) {
	pol, err := exitpolicy.Parse([]string{"reject private", "accept tcp 192.0.2.0/24:80,443", "accept icmp *", "reject *"})
	if err != nil {
		t.Fatal(err)
	}
	dns := []netip.Addr{netip.MustParseAddr("100.64.9.53"), netip.MustParseAddr("fd00::53")}
	for _, tc := range []struct {
		name string
		cfg  adapter.Config
		want string
	}{
		{"exit", adapter.Config{MTU: 1280, DNS: dns, ExitPolicy: pol},
			"mtu=1280 dns=[100.64.9.53 fd00::53] policy=true(reject private; accept tcp 192.0.2.0/24:80,443; accept icmp *; reject *)"},
		{"client", adapter.Config{MTU: 1400}, "mtu=1400 dns=[] policy=false()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := adapterplugin.Launch(plugintest.Launcher(t, "config"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Open(tc.cfg); err != nil {
				t.Fatal(err)
			}
			if got := string(readN(t, a, 1)[0].Buf); got != tc.want {
				t.Fatalf("the child was opened with\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func readN(t *testing.T, a adapter.Adapter, n int) []adapter.Packet {
	t.Helper()
	var out []adapter.Packet
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]adapter.Packet, adapter.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for len(out) < n {
			k, err := a.ReadPackets(pkts)
			if err != nil {
				t.Errorf("ReadPackets: %v", err)
				return
			}
			for _, p := range pkts[:k] {
				out = append(out, adapter.Packet{Buf: bytes.Clone(p.Buf[:p.N]), N: p.N, Flow: p.Flow})
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("read %d of %d packets", len(out), n)
	}
	return out
}

func roundTrip(t *testing.T, a adapter.Adapter, tag byte) {
	t.Helper()
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		b := make([]byte, 1280)
		for j := range b {
			b[j] = tag + byte(i) + byte(j)
		}
		pkts[i] = adapter.Packet{Buf: b, N: 1280, Flow: uint64(1000 + i)}
	}
	if n, err := a.WritePackets(pkts); err != nil || n != len(pkts) {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	for i, p := range readN(t, a, len(pkts)) {
		if p.Flow != pkts[i].Flow || !bytes.Equal(p.Buf, pkts[i].Buf[:1280]) {
			t.Fatalf("packet %d came back altered (flow %d)", i, p.Flow)
		}
	}
}

func TestPacketsThroughChild(t *testing.T) {
	a, err := adapterplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Name() != "fake" || a.Role() != adapter.RoleExit {
		t.Fatalf("Name, Role = %q, %q", a.Name(), a.Role())
	}
	cfg := adapter.Config{MTU: 1280, Exclude: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}
	if err := a.Open(cfg); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, a, 1)
	if err := a.(adapter.FlowCloser).CloseFlow(77); err != nil {
		t.Fatal(err)
	}
	if p := readN(t, a, 1)[0]; p.Flow != 77 || string(p.Buf) != "closed" {
		t.Fatalf("CloseFlow did not reach the plugin: got %q on flow %d", p.Buf, p.Flow)
	}

	plugintest.KillAndWait(t, a.(pluginkit.Reporter))
	// Open was replayed, so packets flow again; retry while the data
	// channel of the new child is being published.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.WritePackets([]adapter.Packet{{Buf: make([]byte, 20), N: 20}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WritePackets after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	readN(t, a, 1)
	roundTrip(t, a, 2)
}

// An adapter run in a child honours the contract as it would in process:
// the glue adds nothing a plugin author must work around. Provoke writes
// the probe, which the echo child sends back on its flow.
func TestConformanceThroughChild(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		a, err := adapterplugin.Launch(plugintest.Launcher(t, "echo"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Subject{Adapter: a, Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
			p := adaptertest.Probe()
			if _, err := a.WritePackets([]adapter.Packet{{Buf: p, N: len(p), Flow: 7}}); err != nil {
				t.Fatalf("WritePackets: %v", err)
			}
			return 7
		}}
	})
}

// lockedBuffer is an io.Writer the host's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An adapter in a child that logs through slog.Default (pnat's
// deprecation warning, tun's "device up") reaches the node's log at its
// own level, tagged with the plugin, not as an unparsed stderr line.
func TestChildSlogDefaultReachesHost(t *testing.T) {
	var logged lockedBuffer
	l := plugintest.Launcher(t, "slog")
	l.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := adapterplugin.Launch(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(logged.String(), "\n") {
			if strings.Contains(line, "adapter logs through slog.Default") {
				if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "key=value") {
					t.Fatalf("the child's warning arrived as %q; want level=WARN with key=value", line)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child's warning never reached the host's log:\n%s", logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
