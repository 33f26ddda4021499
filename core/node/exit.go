package node

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/exitpolicy"
	"github.com/tarzan-net/tarzan/core/ippkt"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// The exit side of the IP service. A DATA cell that reaches the last hop
// of a tunnel carries one whole IP packet. The exit checks it against its
// policy, then hands it to the exit adapter (the pseudonymous NAT) tagged
// with the circuit's flow handle; replies come back from the adapter with
// the same handle and go down the circuit as DATA cells.

// exitFlows maps adapter flow handles to circuits.
type exitFlows struct {
	next     atomic.Uint64
	m        sync.Map        // uint64 -> *exitFlow
	restarts atomic.Uint64   // the exit adapter's restart count last seen (maintainExit)
	writer   *adapter.Writer // batches exitData's packets; set at Start
}

// exitFlow is one circuit's state at the exit: the circuit, and the TCP
// flows it carries, reset if the adapter restarts (flows.go).
type exitFlow struct {
	c     *circuit
	flows flowTracker
}

func (n *Node) isDNSAddr(a netip.Addr) bool {
	for _, d := range n.opts.DNSAddrs {
		if d == a.Unmap() {
			return true
		}
	}
	return false
}

// exitData handles a DATA cell addressed to this hop.
func (n *Node) exitData(c *circuit, pkt []byte) {
	if !n.opts.Exit || n.opts.ExitAdapter == nil {
		n.stats.inc(DropNoExit)
		return
	}
	info, err := ippkt.Parse(pkt)
	if err != nil {
		n.stats.inc(DropIPMalformed)
		return
	}
	if !n.isDNSAddr(info.Dst) {
		// The policy also judges every IPv4 address an IPv6 destination
		// carries (64:ff9b::7f00:1 is 127.0.0.1 to a NAT64 on our path).
		dst := netip.AddrPortFrom(info.Dst, info.DstPort)
		if v := n.opts.ExitPolicy.Check(adapter.ProtoName(info.Proto), dst); !v.Allowed {
			// Fail fast: tell the client at once instead of letting its
			// connection time out.
			n.stats.inc(DropExitPolicy)
			if v.Form != "" && v.Form != exitpolicy.FormMapped {
				n.stats.inc(DropExitPolicyEmbedded)
			}
			var buf [1500]byte
			if reply, err := ippkt.Unreachable(buf[:0], pkt); err == nil {
				n.originate(c, onion.CmdData, reply)
			}
			return
		}
	}
	flow := c.exitFlow.Load()
	var ef *exitFlow
	if flow == 0 {
		flow = n.exits.next.Add(1)
		if c.exitFlow.CompareAndSwap(0, flow) {
			ef = &exitFlow{c: c}
			n.exits.m.Store(flow, ef)
		} else {
			flow = c.exitFlow.Load()
		}
	}
	if w := n.exits.writer; w == nil || !w.Write(flow, pkt) {
		n.stats.inc(DropAdapter) // queue full; refusals are counted by adapterWriter
		return
	}
	if ef == nil {
		if v, ok := n.exits.m.Load(flow); ok {
			ef = v.(*exitFlow)
		}
	}
	if ef != nil {
		n.trackFromApp(&ef.flows, pkt, info)
	}
}

// exitLoop carries the exit adapter's replies back down their circuits.
func (n *Node) exitLoop() {
	a := n.opts.ExitAdapter
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
			n.limiter.warn(n.log, "exit-read", "exit adapter read failed; retrying", "adapter", a.Name(), "err", err)
			n.sleep(100 * time.Millisecond)
			continue
		}
		for i := 0; i < k; i++ {
			v, ok := n.exits.m.Load(pkts[i].Flow)
			if !ok {
				n.stats.inc(DropUnknownCircuit)
				continue
			}
			data := pkts[i].Buf[:pkts[i].N]
			if len(data) > onion.MaxData {
				n.stats.inc(DropIPTooBig)
				continue
			}
			ef := v.(*exitFlow)
			if in, err := ippkt.Parse(data); err == nil {
				ef.flows.toApp(data, in)
			}
			n.originate(ef.c, onion.CmdData, data)
		}
	}
}

// closeExitFlow releases the adapter state of a torn-down circuit.
func (n *Node) closeExitFlow(c *circuit) {
	flow := c.exitFlow.Swap(0)
	if flow == 0 {
		return
	}
	n.exits.m.Delete(flow)
	if w := n.exits.writer; w != nil {
		w.CloseFlow(flow) // behind the circuit's last packets, in order
	} else if fc, ok := n.opts.ExitAdapter.(adapter.FlowCloser); ok {
		fc.CloseFlow(flow)
	}
}

// maintainExit notices that the exit adapter restarted (a plugin child
// that died and was started again has lost its NAT state: no flow through
// it can continue) and resets every TCP flow through this exit, down its
// circuit, so the applications give up at once instead of waiting on a
// connection nobody will ever answer. The circuits themselves stay: the
// next connection through them works as soon as the adapter is back.
func (n *Node) maintainExit() {
	r, ok := n.opts.ExitAdapter.(adapter.Restarter)
	if !ok || !n.opts.Exit {
		return
	}
	now := r.Restarts()
	last := n.exits.restarts.Swap(now)
	if now == last {
		return
	}
	n.stats.add(ExitAdapterRestarts, now-last)
	var reset uint64
	n.exits.m.Range(func(_, v any) bool {
		ef := v.(*exitFlow)
		rsts, flows := ef.flows.resets()
		// Counted before the resets leave, so that whoever sees a reset
		// arrive also sees it counted.
		n.stats.add(ExitFlowsReset, uint64(flows))
		reset += uint64(flows)
		for _, rst := range rsts {
			n.originate(ef.c, onion.CmdData, rst)
		}
		return true
	})
	n.log.Info("exit adapter restarted: reset the TCP flows it carried", "restarts", now, "flows", reset)
}

// exitPolicies caches parsed exit-policy summaries of peers' descriptors.
var exitPolicies sync.Map // *descriptor.Descriptor -> *exitpolicy.Policy (nil if unparsable)

// exitAllows reports whether peer p is an exit whose published policy
// accepts (proto, dst). An invalid dst asks only "is it an exit".
func (n *Node) exitAllows(p *view.Peer, proto string, dst netip.AddrPort) bool {
	if !p.Desc.Exit {
		return false
	}
	if !dst.IsValid() || n.isDNSAddr(dst.Addr()) {
		return true
	}
	pol := peerPolicy(p.Desc)
	if pol == nil {
		return false
	}
	ok, _ := pol.Allows(proto, dst)
	return ok
}

func peerPolicy(d *descriptor.Descriptor) *exitpolicy.Policy {
	if v, ok := exitPolicies.Load(d); ok {
		return v.(*exitpolicy.Policy)
	}
	pol, err := exitpolicy.ParseSummary(d.ExitPolicy)
	if err != nil {
		pol = nil
	}
	exitPolicies.Store(d, pol)
	return pol
}
