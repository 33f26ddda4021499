package node

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// paramsTransport publishes params and records, for every datagram it
// sends, whether it had been given its destination's parameters: a
// transport like pt over obfs4 cannot reach a peer without them.
type paramsTransport struct {
	transport.Transport
	params string

	mu    sync.Mutex
	known map[netip.AddrPort]string
	blind map[netip.AddrPort]int // datagrams sent without the peer's params
}

func newParamsTransport(nw *transporttest.Network, params string) *paramsTransport {
	return &paramsTransport{Transport: nw.NewTransport(), params: params,
		known: map[netip.AddrPort]string{}, blind: map[netip.AddrPort]int{}}
}

func (p *paramsTransport) Params() string { return p.params }

func (p *paramsTransport) SetPeerParams(a netip.AddrPort, params string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known[a] = params
	return nil
}

func (p *paramsTransport) WriteBatch(pkts []transport.Packet) error {
	p.mu.Lock()
	for _, pk := range pkts {
		if _, ok := p.known[pk.Addr]; !ok {
			p.blind[pk.Addr]++
		}
	}
	p.mu.Unlock()
	return p.Transport.WriteBatch(pkts)
}

// A peer learned from its descriptor (as gossip proposes them) is given
// to the transport with its parameters before the first probe to it, so
// a transport that needs them (obfs4's cert) can reach the peer at all;
// admission follows.
func TestPeerParamsBeforeFirstProbe(t *testing.T) {
	nw := transporttest.NewNetwork()
	ta, tb := newParamsTransport(nw, "cert=A"), newParamsTransport(nw, "cert=B")
	a := startOne(t, ta, "127.9.1.1:7710", nil)
	defer a.Close()
	b := startOne(t, tb, "127.9.2.1:7711", nil)
	defer b.Close()
	bAddr := netip.MustParseAddrPort("127.9.2.1:7711")
	a.opts.Discovery.(*listDiscovery).propose(discovery.Proposal{Descriptor: b.Descriptor()})
	deadline := time.Now().Add(10 * time.Second)
	for a.view.Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B never admitted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.known[bAddr] != "cert=B" || ta.blind[bAddr] != 0 {
		t.Fatalf("A's transport: params for B %q, %d datagrams sent to B before them; want cert=B before the first", ta.known[bAddr], ta.blind[bAddr])
	}
}
