package ipservice

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// onceDiscovery proposes its peers once, then nothing: the node's
// maintenance runs only on its timer.
type onceDiscovery struct {
	*nodetest.Discovery
	once bool
	done chan struct{}
}

func (d *onceDiscovery) Next(ctx context.Context) ([]discovery.Proposal, error) {
	if !d.once {
		d.once = true
		return d.Discovery.Next(ctx)
	}
	select {
	case <-d.done:
		return nil, discovery.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *onceDiscovery) Close() error {
	select {
	case <-d.done:
	default:
		close(d.done)
	}
	return d.Discovery.Close()
}

func (s *Service) spareCount() int {
	s.client.mu.Lock()
	defer s.client.mu.Unlock()
	n := 0
	for _, t := range s.client.spares {
		if !t.t.Closed() {
			n++
		}
	}
	return n
}

// A new flow (isolation group) takes the spare tunnel, and the next spare
// is built at once, not at the next maintenance round: new groups that
// come one after another never wait for a tunnel build
// (flows_waited_build stays 0), and at most one spare is built at a time.
func TestNewGroupsNeverWaitForABuild(t *testing.T) { synctest.Test(t, testNewGroupsNeverWaitForABuild) }

func testNewGroupsNeverWaitForABuild(t *testing.T) {
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:80", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	client := adaptertest.New(adapter.RoleClient)
	sn := startSvcNet(t, 7, 3, func(i int, o *node.Options) *Options {
		if i == 0 {
			// Maintenance rounds 10 s apart: only the spare's own refill can
			// have a new one ready for the next group.
			o.MaintenanceInterval = 10 * time.Second
			o.Discovery = &onceDiscovery{Discovery: o.Discovery.(*nodetest.Discovery), done: make(chan struct{})}
			return &Options{ClientAdapter: client}
		}
		o.Exit, o.ExitPolicy = true, pol
		return &Options{ExitAdapter: adaptertest.New(adapter.RoleExit)}
	})
	src := sn.svcs[0]
	// The first spare: built at a maintenance round (seconds of
	// virtual time; nothing else happens meanwhile).
	nodetest.WaitFor(t, "the first spare tunnel", 30*time.Second, func() bool { return src.spareCount() == 1 })
	srv := netip.MustParseAddrPort("198.51.100.7:80")
	for g := uint64(1); g <= 5; g++ {
		app := netip.AddrPortFrom(netip.MustParseAddr("100.64.0.2"), uint16(40000+g))
		syn := tcpPacketForTest(app, srv, 1000, 0, 0x02, 0)
		client.Inject(adapter.Packet{Buf: syn, N: len(syn), Flow: g})
		// The next spare is ready a build's time later (the in-memory
		// network's latency), long before the next maintenance round.
		nodetest.WaitFor(t, "the next spare", 50*time.Millisecond, func() bool {
			return src.spareCount() == 1 && len(src.ClientTunnels()) == int(g)+1
		})
	}
	if w := sn.Nodes[0].Stat(FlowsWaitedBuild); w != 0 {
		t.Fatalf("%d groups waited for a tunnel build", w)
	}
	if st := src.ClientTunnels(); len(st) != 6 {
		t.Fatalf("%d client tunnels, want 5 in use and 1 spare: %+v", len(st), st)
	}
}
