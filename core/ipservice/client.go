package ipservice

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// The client side of the IP service. Packets from the client adapter are
// assigned to tunnels by flow (the adapter's isolation group: one per SOCKS
// username, say): a flow never shares a tunnel with another, and a tunnel
// is used only for destinations its exit's published policy accepts. A
// spare tunnel is kept built ahead of need, so a new flow starts at once;
// packets that arrive while a tunnel is being built wait in a small queue.

const (
	pendingPerFlow = 64
	buildTimeout   = 30 * time.Second
)

type clientState struct {
	mu       sync.Mutex
	byFlow   map[uint64][]*ipTunnel
	building map[uint64]*pendingFlow
	spares   []*ipTunnel
	spareGo  bool
	exclude  []netip.Prefix
	writer   *adapter.Writer       // batches deliverClient's packets; set at Start
	fq       *fairQueue[*ipTunnel] // app → exit, in front of SendData (fq.go); set at Start
}

// ipTunnel is a tunnel of the client side: the engine's tunnel, the
// isolation group it serves and the TCP flows it carries, reset when its
// exit is lost (flows.go).
type ipTunnel struct {
	s     *Service
	id    uint64 // tells its flows from other tunnels' in the fair queue
	t     *node.Tunnel
	flow  atomic.Uint64 // client isolation group; 0 for a spare
	flows flowTracker
}

// buildTunnel builds a client tunnel of hops hops whose exit satisfies
// last: what its exit sends goes to the client adapter under its flow.
func (s *Service) buildTunnel(ctx context.Context, hops int, last func(*view.Peer) bool) (*ipTunnel, error) {
	it := &ipTunnel{s: s, id: tunnelIDs.Add(1)}
	t, err := s.n.BuildTunnelWith(ctx, node.TunnelSpec{
		Hops: hops, Last: last,
		Events: node.TunnelEvents{Data: it.fromExit, ExitLost: it.exitLost},
	})
	if err != nil {
		return nil, err
	}
	it.t = t
	return it, nil
}

var tunnelIDs atomic.Uint64

type pendingFlow struct {
	proto string
	dst   netip.AddrPort
	pkts  []parsedPacket
}

// parsedPacket is a packet and what ippkt.Parse found in it: a packet
// queued while its tunnel is built is not parsed again when it leaves.
type parsedPacket struct {
	pkt  []byte
	info ippkt.Info
}

// peerPrefixes are the host prefixes of every admitted peer: a client
// adapter that routes (TUN) must never route them into a tunnel, or the
// node's own links would loop.
func (s *Service) peerPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s.n.View().All() {
		a := p.Addr.Addr().Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// updateExclude tells a routing client adapter about new peer addresses.
func (s *Service) updateExclude() {
	u, ok := s.opts.ClientAdapter.(adapter.ExcludeUpdater)
	if !ok {
		return
	}
	ex := s.peerPrefixes()
	s.client.mu.Lock()
	same := slices.Equal(ex, s.client.exclude)
	s.client.exclude = ex
	s.client.mu.Unlock()
	if !same {
		if err := u.SetExclude(ex); err != nil {
			s.limiter.Warn(s.log, "exclude", "client adapter refused the peer exclusion list", "err", err)
		}
	}
}

func (s *Service) clientLoop() {
	a := s.opts.ClientAdapter
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	batch := make([]fqItem[*ipTunnel], fqBatch) // drain's
	for {
		k, err := a.ReadPackets(pkts)
		if err != nil {
			if s.stopped() {
				return
			}
			s.limiter.Warn(s.log, "client-read", "client adapter read failed; retrying", "adapter", a.Name(), "err", err)
			s.sleep(100 * time.Millisecond)
			continue
		}
		for i := 0; i < k; i++ {
			s.clientPacket(pkts[i].Flow, pkts[i].Buf[:pkts[i].N])
		}
		s.client.fq.drain(batch) // a no-op without a fair queue
	}
}

// clientPacket sends one packet from a local application into a tunnel.
func (s *Service) clientPacket(flow uint64, pkt []byte) {
	info, err := ippkt.Parse(pkt)
	if err != nil {
		s.inc(DropIPMalformed)
		return
	}
	s.routePacket(flow, pkt, info)
}

// routePacket is clientPacket for a packet parsed already (info is
// ippkt.Parse(pkt)): the one parse serves the MSS clamp, the choice of
// tunnel and the flow tracker.
func (s *Service) routePacket(flow uint64, pkt []byte, info ippkt.Info) {
	if len(pkt) > onion.MaxData {
		s.inc(DropIPTooBig)
		return
	}
	adapter.ClampMSS(pkt, info, adapter.InnerMTU)
	if d := info.Dst; d.IsMulticast() || d.IsLinkLocalUnicast() || d.IsUnspecified() || d.IsLoopback() {
		// The kernel's own chatter (IPv6 neighbour discovery, mDNS, ...)
		// that a TUN catches: it means nothing beyond this host.
		s.inc(DropIPLocal)
		return
	}
	proto, dst := adapter.ProtoName(info.Proto), netip.AddrPortFrom(info.Dst, info.DstPort)
	if it := s.tunnelFor(flow, proto, dst); it != nil {
		if q := s.client.fq; q != nil {
			q.push(it.id, it, pkt, info) // sent by sendClient
			return
		}
		if s.sendTo(it, flow, pkt, info) {
			return
		}
	}
	s.queueForBuild(flow, proto, dst, pkt, info)
}

// sendClient is the client fair queue's sender: each packet goes into
// the tunnel chosen for it.
func (s *Service) sendClient(items []fqItem[*ipTunnel]) {
	s.n.Cork() // the batch's frames leave in one write, from here
	defer s.n.Uncork()
	for _, it := range items {
		if !s.sendTo(it.to, it.to.flow.Load(), it.buf, it.info) {
			info := it.info
			s.queueForBuild(it.to.flow.Load(), adapter.ProtoName(info.Proto), netip.AddrPortFrom(info.Dst, info.DstPort), it.buf, info)
		}
	}
}

// sendTo sends a packet into it; false means the tunnel is closed and
// the packet should wait for a new one.
func (s *Service) sendTo(it *ipTunnel, flow uint64, pkt []byte, info ippkt.Info) bool {
	err := it.t.SendData(pkt)
	if err == nil {
		s.trackFromApp(&it.flows, pkt, info) // for exitLost's resets
		return true
	}
	if errors.Is(err, onion.ErrAside) {
		// Its exit is being rejoined: the flow stays on it (a new
		// tunnel would have a new exit); the application resends.
		s.inc(DropExitAside)
		return true
	}
	return false
}

// tunnelFor returns an open tunnel of flow whose exit accepts dst, taking
// a spare one if the flow has none.
func (s *Service) tunnelFor(flow uint64, proto string, dst netip.AddrPort) *ipTunnel {
	cs := &s.client
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byFlow == nil {
		cs.byFlow = map[uint64][]*ipTunnel{}
	}
	live := cs.byFlow[flow][:0]
	var found *ipTunnel
	for _, t := range cs.byFlow[flow] {
		if t.t.Closed() {
			continue
		}
		live = append(live, t)
		if found == nil && s.tunnelExits(t, proto, dst) {
			found = t
		}
	}
	cs.byFlow[flow] = live
	if found != nil {
		return found
	}
	for i, t := range cs.spares {
		if !t.t.Closed() && s.tunnelExits(t, proto, dst) {
			cs.spares = slices.Delete(cs.spares, i, i+1)
			t.flow.Store(flow)
			cs.byFlow[flow] = append(cs.byFlow[flow], t)
			s.spareLocked() // the next new flow finds one too
			return t
		}
	}
	return nil
}

// spareLocked starts building a spare tunnel if fewer than SpareTunnels
// are ready and none is being built: at most one build at a time, so a
// burst of new flows (or of lost spares) never floods the network with
// builds. cs.mu is held. It reports whether it started one.
func (s *Service) spareLocked() bool {
	cs := &s.client
	if len(cs.spares) >= s.opts.SpareTunnels || cs.spareGo || s.n.View().Len() == 0 || s.stopped() {
		return false
	}
	cs.spareGo = true
	s.n.Go(s.buildSpare)
	return true
}

// tunnelExits reports whether t's exit accepts proto to dst; a tunnel
// being rebuilt on a fresh path has no exit yet.
func (s *Service) tunnelExits(t *ipTunnel, proto string, dst netip.AddrPort) bool {
	p := t.t.Exit()
	return p != nil && s.exitAllows(p, proto, dst)
}

// queueForBuild holds a packet while a tunnel for its flow is built.
func (s *Service) queueForBuild(flow uint64, proto string, dst netip.AddrPort, pkt []byte, info ippkt.Info) {
	cs := &s.client
	cs.mu.Lock()
	if cs.building == nil {
		cs.building = map[uint64]*pendingFlow{}
	}
	pf := cs.building[flow]
	start := pf == nil
	if start {
		pf = &pendingFlow{proto: proto, dst: dst}
		cs.building[flow] = pf
		s.inc(FlowsWaitedBuild)
	}
	if len(pf.pkts) < pendingPerFlow {
		pf.pkts = append(pf.pkts, parsedPacket{slices.Clone(pkt), info})
	} else {
		s.inc(node.DropQueueFull)
	}
	cs.mu.Unlock()
	if start {
		s.n.Go(func() { s.buildForFlow(flow, pf) })
	}
}

func (s *Service) buildForFlow(flow uint64, pf *pendingFlow) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.n.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	t, err := s.buildTunnel(ctx, s.opts.TunnelHops, func(p *view.Peer) bool { return s.exitAllows(p, pf.proto, pf.dst) })
	cs := &s.client
	cs.mu.Lock()
	delete(cs.building, flow)
	pkts := pf.pkts
	if err == nil {
		t.flow.Store(flow)
		cs.byFlow[flow] = append(cs.byFlow[flow], t)
	}
	cs.mu.Unlock()
	if err != nil {
		s.logNoTunnel(pf.proto, pf.dst, err)
		s.add(DropNoTunnel, uint64(len(pkts)))
		// Fail fast: answer the application with ICMP unreachable.
		for _, p := range pkts {
			var buf [1500]byte
			if reply, e := ippkt.Unreachable(buf[:0], p.pkt); e == nil {
				s.deliverClient(flow, reply)
			}
		}
		return
	}
	for _, p := range pkts {
		s.routePacket(flow, p.pkt, p.info)
	}
	if q := s.client.fq; q != nil {
		q.kick()
	}
}

// deliverClient hands a packet from a tunnel to the client adapter.
func (s *Service) deliverClient(flow uint64, pkt []byte) {
	if w := s.client.writer; w == nil || !w.Write(flow, pkt) {
		s.inc(DropAdapter)
	}
}

// deliverClientBatch is deliverClient from inside a receive loop's
// batch (TunnelEvents.Data): the packet is queued and leaves with the
// rest of the batch when it ends (flushWriters).
func (s *Service) deliverClientBatch(flow uint64, pkt []byte) {
	if w := s.client.writer; w == nil || !w.Queue(flow, pkt) {
		s.inc(DropAdapter)
	}
}

// maintainClient keeps spare tunnels built and retires idle ones.
func (s *Service) maintainClient(now time.Time) {
	if s.opts.ClientAdapter == nil {
		return
	}
	s.updateExclude()
	cs := &s.client
	cs.mu.Lock()
	live := cs.spares[:0]
	for _, t := range cs.spares {
		if !t.t.Closed() {
			live = append(live, t)
		}
	}
	cs.spares = live
	var idle []*ipTunnel
	for flow, ts := range cs.byFlow {
		keep := ts[:0]
		for _, t := range ts {
			if t.t.Closed() {
				continue
			}
			if now.Sub(t.t.LastUse()) > s.n.TunnelIdleTimeout() {
				idle = append(idle, t)
				continue
			}
			keep = append(keep, t)
		}
		if len(keep) == 0 {
			delete(cs.byFlow, flow)
		} else {
			cs.byFlow[flow] = keep
		}
	}
	s.spareLocked()
	cs.mu.Unlock()
	for _, t := range idle {
		t.t.Close()
	}
}

// buildSpare builds one spare tunnel, then the next one if fewer than
// SpareTunnels are ready (a failed build waits for the next maintenance
// round instead).
func (s *Service) buildSpare() {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.n.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	t, err := s.buildTunnel(ctx, s.opts.TunnelHops, func(p *view.Peer) bool { return p.Desc.Exit })
	cs := &s.client
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.spareGo = false
	if err != nil {
		return
	}
	cs.spares = append(cs.spares, t)
	s.spareLocked()
}
