package ipservice

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// The exit side of the IP service. A DATA cell that reaches the last hop
// of a tunnel carries one whole IP packet. The exit checks it against its
// policy, then hands it to the exit adapter (the pseudonymous NAT) tagged
// with the circuit's flow handle (node.ExitCircuit.Flow); replies come
// back from the adapter with the same handle and go down the circuit as
// DATA cells.

// exitFlows maps adapter flow handles to circuits.
type exitFlows struct {
	m        sync.Map              // uint64 -> *exitFlow
	restarts atomic.Uint64         // the exit adapter's restart count last seen (maintainExit)
	writer   *adapter.Writer       // batches exitData's packets; set at Start
	fq       *fairQueue[*exitFlow] // server → client, in front of Reply (fq.go); set at Start
}

// exitFlow is one circuit's state at the exit: the circuit, and the TCP
// flows it carries, reset if the adapter restarts (flows.go).
type exitFlow struct {
	c     node.ExitCircuit
	flow  uint64 // c.Flow()
	flows flowTracker
}

// exitHandler is the Service as the node's node.ExitHandler.
type exitHandler struct{ s *Service }

func (h exitHandler) ExitData(c node.ExitCircuit, pkt []byte) { h.s.exitData(c, pkt) }
func (h exitHandler) ExitClosed(flow uint64)                  { h.s.closeExitFlow(flow) }

func (s *Service) isDNSAddr(a netip.Addr) bool {
	for _, d := range s.opts.DNSAddrs {
		if d == a.Unmap() {
			return true
		}
	}
	return false
}

// exitData handles a DATA cell addressed to this hop.
func (s *Service) exitData(c node.ExitCircuit, pkt []byte) {
	info, err := ippkt.Parse(pkt)
	if err != nil {
		s.inc(DropIPMalformed)
		return
	}
	if !s.isDNSAddr(info.Dst) {
		// The policy also judges every IPv4 address an IPv6 destination
		// carries (64:ff9b::7f00:1 is 127.0.0.1 to a NAT64 on our path).
		dst := netip.AddrPortFrom(info.Dst, info.DstPort)
		if v := s.n.ExitPolicy().Check(adapter.ProtoName(info.Proto), dst); !v.Allowed {
			// Fail fast: tell the client at once instead of letting its
			// connection time out.
			s.inc(DropExitPolicy)
			s.logExitRefused(adapter.ProtoName(info.Proto), dst)
			if v.Form != "" && v.Form != exitpolicy.FormMapped {
				s.inc(DropExitPolicyEmbedded)
			}
			var buf [1500]byte
			if reply, err := ippkt.Unreachable(buf[:0], pkt); err == nil {
				c.Reply(reply)
			}
			return
		}
	}
	flow := c.Flow()
	// Load first: LoadOrStore's argument would be allocated for every
	// packet, found or not (a sixth of exitData's CPU in a profile).
	v, ok := s.exits.m.Load(flow)
	if !ok {
		v, _ = s.exits.m.LoadOrStore(flow, &exitFlow{c: c, flow: flow})
	}
	// Queued: it leaves with the rest of the receive loop's batch
	// (flushWriters).
	if w := s.exits.writer; w == nil || !w.Queue(flow, pkt) {
		s.inc(DropAdapter) // queue full; refusals are counted by adapterWriter
		return
	}
	s.trackFromApp(&v.(*exitFlow).flows, pkt, info)
}

// exitLoop carries the exit adapter's replies back down their circuits.
func (s *Service) exitLoop() {
	a := s.opts.ExitAdapter
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	batch := make([]fqItem[*exitFlow], fqBatch) // drain's
	for {
		k, err := a.ReadPackets(pkts)
		if err != nil {
			if s.stopped() {
				return
			}
			s.limiter.Warn(s.log, "exit-read", "exit adapter read failed; retrying", "adapter", a.Name(), "err", err)
			s.sleep(100 * time.Millisecond)
			continue
		}
		for i := 0; i < k; i++ {
			v, ok := s.exits.m.Load(pkts[i].Flow)
			if !ok {
				s.inc(node.DropUnknownCircuit)
				continue
			}
			data := pkts[i].Buf[:pkts[i].N]
			if len(data) > onion.MaxData {
				s.inc(DropIPTooBig)
				continue
			}
			ef := v.(*exitFlow)
			in, err := ippkt.Parse(data)
			if err == nil {
				ef.flows.toApp(data, in)
			}
			if q := s.exits.fq; q != nil && err == nil {
				q.push(ef.flow, ef, data, in) // sent by sendExit
			} else {
				ef.c.Reply(data)
			}
		}
		s.exits.fq.drain(batch)
	}
}

// sendExit is the exit fair queue's sender: each packet goes down its
// circuit.
func (s *Service) sendExit(items []fqItem[*exitFlow]) {
	s.n.Cork() // the batch's frames leave in one write, from here
	defer s.n.Uncork()
	for _, it := range items {
		it.to.c.Reply(it.buf)
	}
}

// closeExitFlow releases the adapter state of a torn-down circuit.
func (s *Service) closeExitFlow(flow uint64) {
	s.exits.m.Delete(flow)
	if w := s.exits.writer; w != nil {
		w.CloseFlow(flow) // behind the circuit's last packets, in order
	} else if fc, ok := s.opts.ExitAdapter.(adapter.FlowCloser); ok {
		fc.CloseFlow(flow)
	}
}

// maintainExit notices that the exit adapter restarted (a plugin child
// that died and was started again has lost its NAT state: no flow through
// it can continue) and resets every TCP flow through this exit, down its
// circuit, so the applications give up at once instead of waiting on a
// connection nobody will ever answer. The circuits themselves stay: the
// next connection through them works as soon as the adapter is back.
func (s *Service) maintainExit() {
	r, ok := s.opts.ExitAdapter.(adapter.Restarter)
	if !ok || !s.n.IsExit() {
		return
	}
	now := r.Restarts()
	last := s.exits.restarts.Swap(now)
	if now == last {
		return
	}
	s.add(ExitAdapterRestarts, now-last)
	var reset uint64
	s.exits.m.Range(func(_, v any) bool {
		ef := v.(*exitFlow)
		rsts, flows := ef.flows.resets()
		// Counted before the resets leave, so that whoever sees a reset
		// arrive also sees it counted.
		s.add(ExitFlowsReset, uint64(flows))
		reset += uint64(flows)
		for _, rst := range rsts {
			ef.c.Reply(rst)
		}
		return true
	})
	s.log.Info("exit adapter restarted: reset the TCP flows it carried", "restarts", now, "flows", reset)
}
