package node

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// ipShim is the smallest IP service the engine's own tests need to carry
// packets between fake adapters (the real one, core/ipservice, is built
// on this package and so cannot serve its tests). At an exit it is the
// node's ExitHandler: DATA goes to the exit adapter under the circuit's
// flow handle, and what the adapter sends back goes down that circuit.
// At a client it gives each isolation group one tunnel to an exit whose
// published policy accepts the packet's destination, built when the
// group's first packet arrives (the packets that arrive meanwhile wait,
// and leave once it is up), and hands what comes back to the client
// adapter. No policy check, no flow tracking, no spares: the tests that
// use it send only what the policies accept.
type ipShim struct {
	n      *Node
	client *adaptertest.Fake // nil at an exit
	exit   *adaptertest.Fake // nil at a client

	mu       sync.Mutex
	byFlow   map[uint64][]*Tunnel
	building map[uint64][][]byte // packets waiting for the flow's tunnel
	circs    sync.Map            // exit flow handle -> ExitCircuit
}

// exitShim is the ExitHandler of an exit whose adapter is f; start it
// once the node exists.
func exitShim(f *adaptertest.Fake) *ipShim { return &ipShim{exit: f} }

// clientShim serves the client adapter f.
func clientShim(f *adaptertest.Fake) *ipShim {
	return &ipShim{client: f, byFlow: map[uint64][]*Tunnel{}, building: map[uint64][][]byte{}}
}

// start runs the shim on n until n stops, then closes its adapter.
func (s *ipShim) start(n *Node) {
	s.n = n
	if s.client != nil {
		n.Go(s.clientLoop)
	}
	if s.exit != nil {
		n.Go(s.exitLoop)
	}
	n.Go(func() {
		<-n.Done()
		for _, f := range []*adaptertest.Fake{s.client, s.exit} {
			if f != nil {
				f.Close()
			}
		}
	})
}

func (s *ipShim) ExitData(c ExitCircuit, pkt []byte) {
	flow := c.Flow()
	s.circs.Store(flow, c)
	s.exit.WritePackets([]adapter.Packet{{Buf: pkt, N: len(pkt), Flow: flow}})
}

func (s *ipShim) ExitClosed(flow uint64) {
	s.circs.Delete(flow)
	s.exit.CloseFlow(flow)
}

func (s *ipShim) exitLoop() {
	pkts := shimBuffers()
	for {
		k, err := s.exit.ReadPackets(pkts)
		if err != nil {
			return
		}
		for _, p := range pkts[:k] {
			if c, ok := s.circs.Load(p.Flow); ok {
				c.(ExitCircuit).Reply(p.Buf[:p.N])
			}
		}
	}
}

func (s *ipShim) clientLoop() {
	pkts := shimBuffers()
	for {
		k, err := s.client.ReadPackets(pkts)
		if err != nil {
			return
		}
		for _, p := range pkts[:k] {
			s.send(p.Flow, p.Buf[:p.N])
		}
	}
}

// send puts pkt into flow's tunnel, or starts building one.
func (s *ipShim) send(flow uint64, pkt []byte) {
	in, err := ippkt.Parse(pkt)
	if err != nil {
		return
	}
	dst := netip.AddrPortFrom(in.Dst, in.DstPort)
	s.mu.Lock()
	var tun *Tunnel
	for _, t := range s.byFlow[flow] {
		if !t.Closed() {
			tun = t
		}
	}
	waiting, busy := s.building[flow]
	build := tun == nil && !busy
	if tun == nil && len(waiting) < 64 { // as the IP service bounds it
		s.building[flow] = append(waiting, slices.Clone(pkt))
	}
	s.mu.Unlock()
	if tun != nil {
		tun.SendData(pkt)
		return
	}
	if build {
		s.n.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t, err := s.buildExitTunnel(ctx, 3, shimProto(in.Proto), dst, flow)
			s.mu.Lock()
			queued := s.building[flow]
			delete(s.building, flow)
			if err == nil {
				s.byFlow[flow] = append(s.byFlow[flow], t)
			}
			s.mu.Unlock()
			for _, p := range queued {
				if err == nil {
					t.SendData(p)
				}
			}
		})
	}
}

// buildExitTunnel builds a tunnel of hops hops to an exit whose published
// policy accepts proto to dst; what its exit sends goes to the client
// adapter under flow.
func (s *ipShim) buildExitTunnel(ctx context.Context, hops int, proto string, dst netip.AddrPort, flow uint64) (*Tunnel, error) {
	return s.n.BuildTunnelWith(ctx, TunnelSpec{
		Hops: hops,
		Last: func(p *view.Peer) bool {
			if !p.Desc.Exit || p.ExitPolicy == nil {
				return false
			}
			ok, _ := p.ExitPolicy.Allows(proto, dst)
			return ok
		},
		Events: TunnelEvents{Data: func(pkt []byte) {
			s.client.WritePackets([]adapter.Packet{{Buf: pkt, N: len(pkt), Flow: flow}})
		}},
	})
}

// tunnelsOf are the tunnels of flow.
func (s *ipShim) tunnelsOf(flow uint64) []*Tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Tunnel(nil), s.byFlow[flow]...)
}

func shimProto(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return "icmp"
}

func shimBuffers() []adapter.Packet {
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	return pkts
}

// udpPacket builds an IPv4 or IPv6 UDP packet with valid checksums.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	pkt, err := ippkt.AppendUDP(nil, src, dst, payload)
	if err != nil {
		panic(err) // a test's own addresses
	}
	return pkt
}
