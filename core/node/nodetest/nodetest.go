// Package nodetest runs in-process networks of Tarzan nodes for the tests
// of packages built on the engine (core/ipservice, core/loopcover, the red
// team): an in-memory transport, a discovery that proposes every address,
// and a wait until every node knows every other and every mimic link is
// up.
//
// It uses channels and timers only, no sockets: it runs inside a
// testing/synctest bubble as well as outside one. A test that wants the
// nodes on a virtual clock sets node.Options.Clock in Config.Tweak.
package nodetest

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
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// Discovery proposes a fixed address list at start and again every
// 300 ms (as the static plugin does on its interval); Propose injects
// more proposals.
type Discovery struct {
	ch    chan []discovery.Proposal
	once  sync.Once
	done  chan struct{}
	props []discovery.Proposal
}

// NewDiscovery proposes addrs.
func NewDiscovery(addrs []netip.AddrPort) *Discovery {
	d := &Discovery{ch: make(chan []discovery.Proposal, 8), done: make(chan struct{})}
	for _, a := range addrs {
		d.props = append(d.props, discovery.Proposal{Addr: a})
	}
	d.ch <- d.props
	return d
}

func (d *Discovery) Name() string            { return "list" }
func (d *Discovery) Start(self []byte) error { return nil }
func (d *Discovery) Next(ctx context.Context) ([]discovery.Proposal, error) {
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
func (d *Discovery) Admitted([][]byte) error { return nil }
func (d *Discovery) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}

// Propose hands p to the node at its next Next.
func (d *Discovery) Propose(p ...discovery.Proposal) { d.ch <- p }

// Config describes a network.
type Config struct {
	Nodes int // how many nodes
	K     int // mimics per node
	// Tweak may change node i's options before node.New.
	Tweak func(i int, o *node.Options)
	// Attach runs after node.New and before node i starts: the services
	// a test builds on the engine are started there.
	Attach func(i int, n *node.Node)
	// NoWait returns as soon as the nodes started, without waiting for
	// membership and links.
	NoWait bool
	// Wait bounds the wait for membership and links; default 60 s,
	// generous: a loaded CI machine under -race once needed more than 20 s.
	Wait time.Duration
}

// Net is a running network. The test's cleanup stops it.
type Net struct {
	T     testing.TB
	Mem   *transporttest.Network
	Nodes []*node.Node
	Disc  []*Discovery
}

// AddrOf is node i's address: 127.(i+1).0.1:7700, each node alone in its
// /16.
func AddrOf(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1}), 7700)
}

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Start starts c.Nodes nodes on an in-memory network, all bootstrapped
// with every address, with a 20 ms maintenance interval, and (unless
// c.NoWait) waits until every node knows every other and every mimic
// link is up.
func Start(t testing.TB, c Config) *Net {
	t.Helper()
	tn := &Net{T: t, Mem: newNetwork()}
	var addrs []netip.AddrPort
	for i := 0; i < c.Nodes; i++ {
		addrs = append(addrs, AddrOf(i))
	}
	t.Cleanup(tn.Close)
	for i := 0; i < c.Nodes; i++ {
		id, err := identity.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDiscovery(addrs)
		o := node.Options{
			Identity: id, Transport: tn.Mem.NewTransport(), Listen: addrs[i], Discovery: d,
			MimicCount: c.K, MaintenanceInterval: 20 * time.Millisecond, Logger: Quiet(),
		}
		if c.Tweak != nil {
			c.Tweak(i, &o)
		}
		n, err := node.New(o)
		if err != nil {
			t.Fatal(err)
		}
		tn.Nodes = append(tn.Nodes, n)
		tn.Disc = append(tn.Disc, d)
		if c.Attach != nil {
			c.Attach(i, n)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !c.NoWait {
		limit := c.Wait
		if limit == 0 {
			limit = 60 * time.Second
		}
		tn.WaitLinked(limit)
	}
	return tn
}

// Close stops every node and waits for their goroutines.
func (tn *Net) Close() {
	for _, n := range tn.Nodes {
		n.Close()
	}
	for _, n := range tn.Nodes {
		n.Wait()
	}
}

// WaitLinked waits until every node knows every other and every mimic
// link is up, and fails the test after limit, saying what it saw.
func (tn *Net) WaitLinked(limit time.Duration) {
	tn.T.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok := true
		var why string
		for _, n := range tn.Nodes {
			if n.View().Len() != len(tn.Nodes)-1 {
				ok, why = false, fmt.Sprintf("%s knows %d peers", n.ID().Short(), n.View().Len())
				break
			}
			for _, m := range n.Mimics() {
				if !m.Up {
					ok, why = false, fmt.Sprintf("%s: link to %s down", n.ID().Short(), m.ID.Short())
					break
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tn.T.Fatalf("network did not converge in %v: %s", limit, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ByID finds a node of the network; nil if none has id.
func (tn *Net) ByID(id identity.ID) *node.Node {
	for _, n := range tn.Nodes {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// Index is the position of the node with id in Nodes; -1 if none.
func (tn *Net) Index(id identity.ID) int {
	for i, n := range tn.Nodes {
		if n.ID() == id {
			return i
		}
	}
	return -1
}

// RawTransport gives a test a transport of its own on the network, to
// play an outsider; the test's cleanup closes it.
func (tn *Net) RawTransport(addr netip.AddrPort) transport.Transport {
	tr := tn.Mem.NewTransport()
	if _, err := tr.Listen(addr); err != nil {
		tn.T.Fatal(err)
	}
	tn.T.Cleanup(func() { tr.Close() })
	return tr
}

// WaitFor polls cond every 10 ms and fails the test after limit.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BubbleLatency is the in-memory network's latency inside a
// testing/synctest bubble: with none, everything the nodes exchange
// happens at one virtual instant and a round trip measures 0 s. Outside
// a bubble there is none (benchmarks measure the machine).
const BubbleLatency = time.Millisecond

// bubbleEpoch is when a synctest bubble's clock starts (documented by
// testing/synctest): midnight UTC, 2000-01-01.
var bubbleEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// InBubble reports whether the caller runs in a synctest bubble, by its
// clock: no real clock reads a time in 2000.
func InBubble() bool { return time.Now().Before(bubbleEpoch.AddDate(1, 0, 0)) }

func newNetwork() *transporttest.Network {
	if InBubble() {
		return transporttest.NewNetwork(transporttest.WithLatency(BubbleLatency))
	}
	return transporttest.NewNetwork()
}
