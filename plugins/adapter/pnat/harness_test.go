package pnat

import (
	"errors"
	"maps"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"go.uber.org/goleak"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	clientV4 = netip.MustParseAddr("100.64.0.2")
	clientV6 = netip.MustParseAddr("fd7a:7a72:7a6e::2")
)

// harness wires client gVisor stacks (one per Flow) to an Exit, as the
// core would: client packets go to WritePackets tagged with the client's
// Flow, and ReadPackets output is routed back by Flow.
type harness struct {
	t  *testing.T
	e  *Exit
	wg sync.WaitGroup

	mu      sync.Mutex
	clients map[uint64]clientDev
}

// clientDev is the tun.Device subset the harness pumps.
type clientDev interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	Close() error
}

// newHarness opens an Exit made from opts as a node would: a policy
// given as OptPolicy is handed over as the node's (nodeConfig).
func newHarness(t *testing.T, opts map[string]string) *harness {
	t.Helper()
	opts, cfg := nodeConfig(t, opts)
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return openHarness(t, a.(*Exit), cfg)
}

// nodeConfig splits test options the way a node hands settings over: the
// exit policy (written as OptPolicy in the tests, for brevity) goes to
// Open as adapter.Config.ExitPolicy, not as pnat's deprecated option.
func nodeConfig(t *testing.T, opts map[string]string) (map[string]string, adapter.Config) {
	t.Helper()
	cfg := adapter.Config{MTU: adapter.InnerMTU}
	v, ok := opts[OptPolicy]
	if !ok {
		return opts, cfg
	}
	pol, err := ParsePolicyOption(v)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ExitPolicy = pol
	opts = maps.Clone(opts)
	delete(opts, OptPolicy)
	return opts, cfg
}

func startHarness(t *testing.T, e *Exit) *harness {
	t.Helper()
	return openHarness(t, e, adapter.Config{MTU: adapter.InnerMTU})
}

func openHarness(t *testing.T, e *Exit, cfg adapter.Config) *harness {
	t.Helper()
	if err := e.Open(cfg); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, e: e, clients: make(map[uint64]clientDev)}
	h.wg.Add(1)
	go h.dispatch()
	t.Cleanup(h.close)
	return h
}

func (h *harness) dispatch() {
	defer h.wg.Done()
	// The client stacks' Write wants headroom for a virtio header: the
	// exit's packets are read in after it.
	const off = 16
	pkts := make([]adapter.Packet, adapter.BatchSize)
	full := make([][]byte, len(pkts))
	for i := range pkts {
		full[i] = make([]byte, off+1500)
		pkts[i].Buf = full[i][off:]
	}
	for {
		n, err := h.e.ReadPackets(pkts)
		if err != nil {
			return
		}
		for i, p := range pkts[:n] {
			h.mu.Lock()
			dev := h.clients[p.Flow]
			h.mu.Unlock()
			if dev != nil {
				dev.Write([][]byte{full[i][:off+p.N]}, off)
			}
		}
	}
}

// client adds a client stack (100.64.0.2, fd7a:7a72:7a6e::2) on flow.
func (h *harness) client(flow uint64) *testClient {
	h.t.Helper()
	c, err := newTestClient([]netip.Addr{clientV4, clientV6})
	if err != nil {
		h.t.Fatal(err)
	}
	h.attach(flow, c)
	return c
}

// wgClient adds a stock wireguard tun/netstack client on flow; its
// resolver uses DefaultDNSAddrs through the tunnel.
func (h *harness) wgClient(flow uint64) *netstack.Net {
	h.t.Helper()
	dev, tnet, err := netstack.CreateNetTUN([]netip.Addr{clientV4, clientV6}, DefaultDNSAddrs, 1280)
	if err != nil {
		h.t.Fatal(err)
	}
	h.attach(flow, dev)
	return tnet
}

func (h *harness) attach(flow uint64, dev clientDev) {
	h.mu.Lock()
	h.clients[flow] = dev
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		bufs, sizes := [][]byte{make([]byte, 1500)}, []int{0}
		for {
			n, err := dev.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			if n == 0 {
				continue
			}
			_, err = h.e.WritePackets([]adapter.Packet{{Buf: bufs[0], N: sizes[0], Flow: flow}})
			if errors.Is(err, adapter.ErrClosed) {
				return
			}
		}
	}()
}

func (h *harness) close() {
	h.e.Close()
	h.mu.Lock()
	for _, d := range h.clients {
		d.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *harness) stat(name string) uint64 { return h.e.Stats()[name] }

// waitStat polls a counter until cond holds or 3 s pass.
func (h *harness) waitStat(name string, cond func(uint64) bool) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if cond(h.stat(name)) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
