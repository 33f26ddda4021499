package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// listDiscovery proposes a fixed address list at start and again every
// 300 ms (as the static plugin does on its interval); tests also use it to
// inject proposals.
type listDiscovery struct {
	ch    chan []discovery.Proposal
	once  sync.Once
	done  chan struct{}
	props []discovery.Proposal
}

func newListDiscovery(addrs []netip.AddrPort) *listDiscovery {
	d := &listDiscovery{ch: make(chan []discovery.Proposal, 8), done: make(chan struct{})}
	var props []discovery.Proposal
	for _, a := range addrs {
		props = append(props, discovery.Proposal{Addr: a})
	}
	d.props = props
	d.ch <- props
	return d
}

func (d *listDiscovery) Name() string            { return "list" }
func (d *listDiscovery) Start(self []byte) error { return nil }
func (d *listDiscovery) Next(ctx context.Context) ([]discovery.Proposal, error) {
	select {
	case p := <-d.ch:
		return p, nil
	case <-time.After(300 * time.Millisecond):
		return d.props, nil
	case <-d.done:
		return nil, discovery.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (d *listDiscovery) Admitted([][]byte) error { return nil }
func (d *listDiscovery) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
func (d *listDiscovery) propose(p ...discovery.Proposal) { d.ch <- p }

type testNet struct {
	t     testing.TB
	net   *transporttest.Network
	nodes []*Node
	disc  []*listDiscovery
}

func addrOf(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1}), 7700)
}

// startNet starts count nodes on an in-memory network, each alone in its
// /16, all bootstrapped with every address, and waits until every node
// knows every other and every mimic link is up.
func startNet(t *testing.T, count, k int, tweak func(i int, o *Options)) *testNet {
	return startNetTB(t, count, k, tweak)
}

func startNetB(b *testing.B, count, k int) *testNet { return startNetTB(b, count, k, nil) }

func startNetTB(t testing.TB, count, k int, tweak func(i int, o *Options)) *testNet {
	t.Helper()
	tn := &testNet{t: t, net: newTestNetwork()}
	var addrs []netip.AddrPort
	for i := 0; i < count; i++ {
		addrs = append(addrs, addrOf(i))
	}
	for i := 0; i < count; i++ {
		id, err := identity.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		d := newListDiscovery(addrs)
		o := Options{
			Identity: id, Transport: tn.net.NewTransport(), Listen: addrs[i], Discovery: d,
			MimicCount: k, MaintenanceInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if tweak != nil {
			tweak(i, &o)
		}
		n, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		tn.nodes = append(tn.nodes, n)
		tn.disc = append(tn.disc, d)
	}
	t.Cleanup(tn.close)
	if !noWait {
		// In a bubble the limit is virtual time (convergence takes a few
		// virtual seconds however loaded the machine); outside one
		// (benchmarks) it is generous: a loaded CI machine under -race once
		// needed more than 20 s.
		tn.waitLinked(60 * time.Second)
	}
	return tn
}

var noWait bool

func startNetNoWait(t *testing.T, count int) *testNet {
	noWait = true
	defer func() { noWait = false }()
	return startNetTB(t, count, 2, nil)
}

func (tn *testNet) close() {
	for _, n := range tn.nodes {
		n.Close()
	}
	for _, n := range tn.nodes {
		n.Wait()
	}
}

func (tn *testNet) waitLinked(limit time.Duration) {
	tn.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok := true
		var why string
		for _, n := range tn.nodes {
			if n.view.Len() != len(tn.nodes)-1 {
				ok, why = false, fmt.Sprintf("%s knows %d peers", n.id.Short(), n.view.Len())
				break
			}
			for _, m := range n.Mimics() {
				if !m.Up {
					ok, why = false, fmt.Sprintf("%s: link to %s down", n.id.Short(), m.ID.Short())
					break
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tn.t.Fatalf("network did not converge in %v: %s", limit, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// byID finds a node of the network.
func (tn *testNet) byID(id identity.ID) *Node {
	for _, n := range tn.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// rawTransport gives a test a transport of its own on the network, to play
// an outsider.
func (tn *testNet) rawTransport(addr netip.AddrPort) transport.Transport {
	tr := tn.net.NewTransport()
	if _, err := tr.Listen(addr); err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { tr.Close() })
	return tr
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// namedTransport gives a fake transport another name, so tests can run
// nodes with different transport sets on one in-memory network.
type namedTransport struct {
	transport.Transport
	name string
}

func (t namedTransport) Name() string { return t.name }

// repairsOf counts the repairs n's tunnels went through, of any kind:
// v2's regrow, a rebuild on a fresh path, or a keep-exit rejoin.
func repairsOf(n *Node) uint64 {
	return n.Stat(EventTunnelsRepaired) + n.Stat(EventTunnelsRebuilt) + n.Stat(EventTunnelsRejoined)
}
