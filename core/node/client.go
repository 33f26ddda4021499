package node

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/ippkt"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/adapter"
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
	byFlow   map[uint64][]*Tunnel
	building map[uint64]*pendingFlow
	spares   []*Tunnel
	spareGo  bool
	exclude  []netip.Prefix
	writer   *adapter.Writer // batches deliverClient's packets; set at Start
}

type pendingFlow struct {
	proto string
	dst   netip.AddrPort
	pkts  [][]byte
}

func (n *Node) openAdapters() error {
	if a := n.opts.ClientAdapter; a != nil {
		if err := a.Open(adapter.Config{MTU: adapter.InnerMTU, Exclude: n.peerPrefixes(), DNS: n.opts.DNSAddrs}); err != nil {
			return err
		}
		n.client.writer = n.adapterWriter(a, "client-write")
		n.goRun(n.clientLoop)
	}
	if a := n.opts.ExitAdapter; a != nil {
		if err := a.Open(adapter.Config{MTU: adapter.InnerMTU, DNS: n.opts.DNSAddrs, ExitPolicy: n.opts.ExitPolicy}); err != nil {
			return err
		}
		n.exits.writer = n.adapterWriter(a, "exit-write")
		n.goRun(n.exitLoop)
	}
	return nil
}

// adapterWriter batches the packets the node hands adapter a: DATA cells
// arrive one at a time from many goroutines, and across a plugin boundary
// a packet in a batch of 64 costs a tenth of one sent alone (D-TRUTH). A
// full queue drops (drop_adapter) rather than stall the link the cell
// came from.
func (n *Node) adapterWriter(a adapter.Adapter, warnKey string) *adapter.Writer {
	w := adapter.NewWriter(a, 0, func(lost int, err error) {
		n.stats.add(DropAdapter, uint64(lost))
		n.limiter.warn(n.log, warnKey, "IP adapter refused packets", "adapter", a.Name(), "err", err)
	})
	n.goRun(func() { w.Run(n.stop) })
	return w
}

// peerPrefixes are the host prefixes of every admitted peer: a client
// adapter that routes (TUN) must never route them into a tunnel, or the
// node's own links would loop.
func (n *Node) peerPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range n.view.All() {
		a := p.Addr.Addr().Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

// updateExclude tells a routing client adapter about new peer addresses.
func (n *Node) updateExclude() {
	u, ok := n.opts.ClientAdapter.(adapter.ExcludeUpdater)
	if !ok {
		return
	}
	ex := n.peerPrefixes()
	n.client.mu.Lock()
	same := slices.Equal(ex, n.client.exclude)
	n.client.exclude = ex
	n.client.mu.Unlock()
	if !same {
		if err := u.SetExclude(ex); err != nil {
			n.limiter.warn(n.log, "exclude", "client adapter refused the peer exclusion list", "err", err)
		}
	}
}

func (n *Node) clientLoop() {
	a := n.opts.ClientAdapter
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	for {
		k, err := a.ReadPackets(pkts)
		if err != nil {
			if n.stopped() {
				return
			}
			n.limiter.warn(n.log, "client-read", "client adapter read failed; retrying", "adapter", a.Name(), "err", err)
			n.sleep(100 * time.Millisecond)
			continue
		}
		for i := 0; i < k; i++ {
			n.clientPacket(pkts[i].Flow, pkts[i].Buf[:pkts[i].N])
		}
	}
}

// clientPacket sends one packet from a local application into a tunnel.
func (n *Node) clientPacket(flow uint64, pkt []byte) {
	info, err := ippkt.Parse(pkt)
	if err != nil {
		n.stats.inc(DropIPMalformed)
		return
	}
	if len(pkt) > onion.MaxData {
		n.stats.inc(DropIPTooBig)
		return
	}
	adapter.ClampMSS(pkt, info, adapter.InnerMTU)
	if d := info.Dst; d.IsMulticast() || d.IsLinkLocalUnicast() || d.IsUnspecified() || d.IsLoopback() {
		// The kernel's own chatter (IPv6 neighbour discovery, mDNS, ...)
		// that a TUN catches: it means nothing beyond this host.
		n.stats.inc(DropIPLocal)
		return
	}
	proto, dst := adapter.ProtoName(info.Proto), netip.AddrPortFrom(info.Dst, info.DstPort)
	if t := n.tunnelFor(flow, proto, dst); t != nil {
		err := t.sendLast(onion.CmdData, pkt)
		if err == nil {
			t.touch()
			n.trackFromApp(&t.flows, pkt, info) // for flowsLost's resets
			return
		}
		if errors.Is(err, onion.ErrAside) {
			// Its exit is being rejoined: the flow stays on it (a new
			// tunnel would have a new exit); the application resends.
			n.stats.inc(DropExitAside)
			return
		}
	}
	n.queueForBuild(flow, proto, dst, pkt)
}

// tunnelFor returns an open tunnel of flow whose exit accepts dst, taking
// a spare one if the flow has none.
func (n *Node) tunnelFor(flow uint64, proto string, dst netip.AddrPort) *Tunnel {
	cs := &n.client
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.byFlow == nil {
		cs.byFlow = map[uint64][]*Tunnel{}
	}
	live := cs.byFlow[flow][:0]
	var found *Tunnel
	for _, t := range cs.byFlow[flow] {
		if t.isClosed() {
			continue
		}
		live = append(live, t)
		if found == nil && n.tunnelExits(t, proto, dst) {
			found = t
		}
	}
	cs.byFlow[flow] = live
	if found != nil {
		return found
	}
	for i, t := range cs.spares {
		if !t.isClosed() && n.tunnelExits(t, proto, dst) {
			cs.spares = slices.Delete(cs.spares, i, i+1)
			t.flow = flow
			cs.byFlow[flow] = append(cs.byFlow[flow], t)
			return t
		}
	}
	return nil
}

// tunnelExits reports whether t's exit accepts proto to dst; a tunnel
// being rebuilt on a fresh path has no exit yet.
func (n *Node) tunnelExits(t *Tunnel, proto string, dst netip.AddrPort) bool {
	p := t.exitPeer()
	return p != nil && n.exitAllows(p, proto, dst)
}

// queueForBuild holds a packet while a tunnel for its flow is built.
func (n *Node) queueForBuild(flow uint64, proto string, dst netip.AddrPort, pkt []byte) {
	cs := &n.client
	cs.mu.Lock()
	if cs.building == nil {
		cs.building = map[uint64]*pendingFlow{}
	}
	pf := cs.building[flow]
	start := pf == nil
	if start {
		pf = &pendingFlow{proto: proto, dst: dst}
		cs.building[flow] = pf
	}
	if len(pf.pkts) < pendingPerFlow {
		pf.pkts = append(pf.pkts, slices.Clone(pkt))
	} else {
		n.stats.inc(DropQueueFull)
	}
	cs.mu.Unlock()
	if start {
		n.goRun(func() { n.buildForFlow(flow, pf) })
	}
}

func (n *Node) buildForFlow(flow uint64, pf *pendingFlow) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t, err := n.buildTunnel(ctx, n.opts.TunnelHops, func(p *view.Peer) bool { return n.exitAllows(p, pf.proto, pf.dst) }, nil)
	cs := &n.client
	cs.mu.Lock()
	delete(cs.building, flow)
	pkts := pf.pkts
	if err == nil {
		t.flow = flow
		cs.byFlow[flow] = append(cs.byFlow[flow], t)
	}
	cs.mu.Unlock()
	if err != nil {
		n.limiter.warn(n.log, "client-build", "no tunnel for destination", "proto", pf.proto, "err", err)
		n.stats.add(DropNoTunnel, uint64(len(pkts)))
		// Fail fast: answer the application with ICMP unreachable.
		for _, p := range pkts {
			var buf [1500]byte
			if reply, e := ippkt.Unreachable(buf[:0], p); e == nil {
				n.deliverClient(flow, reply)
			}
		}
		return
	}
	for _, p := range pkts {
		n.clientPacket(flow, p)
	}
}

// deliverClient hands a packet from a tunnel to the client adapter.
func (n *Node) deliverClient(flow uint64, pkt []byte) {
	if w := n.client.writer; w == nil || !w.Write(flow, pkt) {
		n.stats.inc(DropAdapter)
	}
}

// maintainClient keeps spare tunnels built and retires idle ones.
func (n *Node) maintainClient(now time.Time) {
	if n.opts.ClientAdapter == nil {
		return
	}
	n.updateExclude()
	cs := &n.client
	cs.mu.Lock()
	live := cs.spares[:0]
	for _, t := range cs.spares {
		if !t.isClosed() {
			live = append(live, t)
		}
	}
	cs.spares = live
	var idle []*Tunnel
	for flow, ts := range cs.byFlow {
		keep := ts[:0]
		for _, t := range ts {
			if t.isClosed() {
				continue
			}
			if now.Sub(t.lastUse()) > n.opts.TunnelIdleTimeout {
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
	need := len(cs.spares) < n.opts.SpareTunnels && !cs.spareGo && n.view.Len() > 0
	if need {
		cs.spareGo = true
	}
	cs.mu.Unlock()
	for _, t := range idle {
		t.Close()
	}
	if need {
		n.goRun(n.buildSpare)
	}
}

func (n *Node) buildSpare() {
	defer func() {
		n.client.mu.Lock()
		n.client.spareGo = false
		n.client.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	t, err := n.buildTunnel(ctx, n.opts.TunnelHops, func(p *view.Peer) bool { return p.Desc.Exit }, nil)
	if err != nil {
		return
	}
	n.client.mu.Lock()
	n.client.spares = append(n.client.spares, t)
	n.client.mu.Unlock()
}
