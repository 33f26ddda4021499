package testbed

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/tarzan-net/tarzan/sim/adversary"
)

// FrameSize is the size of every link frame on the wire (core/link): the
// UDP payload the adversary counts.
const FrameSize = 1408

// Capture describes one run's packet captures for Analyse.
type Capture struct {
	// Nodes are the nodes' link addresses; node i of the adversary's
	// trace is Nodes[i].
	Nodes []netip.AddrPort
	// NodePcaps[i] is the capture on the host side of node i's veth: its
	// frames leaving (departures) and arriving (arrivals).
	NodePcaps []string
	// Server is the server's address and ServerPcap the capture on its
	// veth: the exits' cleartext connections to it.
	Server     netip.Addr
	ServerPcap string
	// Initiators maps a server port to the node whose flow it serves
	// (ground truth, used only for Flow.Initiator).
	Initiators map[uint16]int
	// Origin is the wall-clock time of bin 0; FlowStart and FlowEnd
	// bound the workload (offsets from Origin).
	Origin             time.Time
	FlowStart, FlowEnd time.Duration
	Bin                time.Duration
}

// Analysis is what the adversary gets from the captures, plus counts.
type Analysis struct {
	Trace *adversary.Trace
	Flows []adversary.Flow

	Frames    uint64 // link frames that left a node during the flow period
	Matched   uint64 // departures (whole capture) whose arrival was found
	Unmatched uint64 // departures with no arrival in the receiver's capture
	OtherUDP  uint64 // node-to-node datagrams of another size (not in the trace)
	Leaks     []string
	Records   int // pcap records read, all files
}

type frameKey struct {
	src, dst int32
	key      uint64
}

type departure struct {
	frameKey
	t int64 // ns offset
}

// Analyse reads the captures into an adversary trace and the exit-side
// flows. Each frame's departure is its time on the sender's veth and its
// arrival the time the same frame (same source, destination and first
// payload bytes) is seen on the receiver's veth; a frame never seen there
// counts as arrived when it left.
func Analyse(c Capture) (*Analysis, error) {
	if len(c.NodePcaps) != len(c.Nodes) {
		return nil, fmt.Errorf("testbed: %d captures for %d nodes", len(c.NodePcaps), len(c.Nodes))
	}
	if c.Bin <= 0 {
		c.Bin = 10 * time.Millisecond
	}
	byAddr := make(map[netip.AddrPort]int32, len(c.Nodes))
	byIP := make(map[netip.Addr]int, len(c.Nodes))
	for i, a := range c.Nodes {
		byAddr[a] = int32(i)
		byIP[a.Addr()] = i
	}
	a := &Analysis{}
	arrivals := map[frameKey]int64{}
	var deps []departure
	origin := c.Origin.UnixNano()
	for i, path := range c.NodePcaps {
		me := int32(i)
		st, err := ReadPcapFile(path, func(p *Packet) {
			if p.Proto != 17 {
				return
			}
			src, ok1 := byAddr[netip.AddrPortFrom(p.Src, p.SrcPort)]
			dst, ok2 := byAddr[netip.AddrPortFrom(p.Dst, p.DstPort)]
			if !ok1 || !ok2 || src == dst {
				return
			}
			if p.Payload != FrameSize {
				if src == me {
					a.OtherUDP++
				}
				return
			}
			k := frameKey{src, dst, p.Key}
			t := p.Time.UnixNano() - origin
			switch me {
			case src:
				deps = append(deps, departure{k, t})
			case dst:
				if _, dup := arrivals[k]; !dup {
					arrivals[k] = t
				}
			}
		})
		a.Records += st.Records
		if err != nil {
			return nil, err
		}
	}
	b := adversary.NewBuilder(len(c.Nodes), c.Bin)
	b.SetLimit(c.FlowEnd + 2*time.Second)
	for _, d := range deps {
		arr, ok := arrivals[d.frameKey]
		if ok {
			a.Matched++
		} else {
			a.Unmatched++
			arr = d.t
		}
		if d.t < 0 {
			continue
		}
		if arr < d.t { // clocks are one clock, but never let a frame travel back
			arr = d.t
		}
		b.Add(int(d.src), int(d.dst), time.Duration(d.t), time.Duration(arr), FrameSize)
		if time.Duration(d.t) >= c.FlowStart && time.Duration(d.t) < c.FlowEnd {
			a.Frames++
		}
	}
	a.Trace = b.Trace()

	// The exits' cleartext: one flow per server-side TCP connection.
	type conn struct {
		exit       netip.AddrPort
		port       uint16
		first, end time.Duration
		flow       adversary.Flow
		bytes      int
	}
	conns := map[[2]netip.AddrPort]*conn{}
	leaks := map[string]bool{}
	if c.ServerPcap != "" {
		st, err := ReadPcapFile(c.ServerPcap, func(p *Packet) {
			if p.Proto != 6 {
				return
			}
			var exit netip.AddrPort
			var port uint16
			up := false
			switch {
			case p.Dst == c.Server:
				exit, port, up = netip.AddrPortFrom(p.Src, p.SrcPort), p.DstPort, true
			case p.Src == c.Server:
				exit, port = netip.AddrPortFrom(p.Dst, p.DstPort), p.SrcPort
			default:
				return
			}
			if _, ok := c.Initiators[port]; !ok {
				return
			}
			key := [2]netip.AddrPort{exit, netip.AddrPortFrom(c.Server, port)}
			t := time.Duration(p.Time.UnixNano() - origin)
			cn := conns[key]
			if cn == nil {
				cn = &conn{exit: exit, port: port, first: t}
				conns[key] = cn
			}
			cn.end = t
			if p.Payload == 0 {
				return
			}
			cn.bytes += p.Payload
			if up {
				cn.flow.AddUp(c.Bin, t, p.Payload)
			} else {
				cn.flow.AddDown(c.Bin, t, p.Payload)
			}
		})
		a.Records += st.Records
		if err != nil {
			return nil, err
		}
	}
	keys := make([][2]netip.AddrPort, 0, len(conns))
	for k := range conns {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := conns[keys[i]], conns[keys[j]]
		if ci.first != cj.first {
			return ci.first < cj.first
		}
		return keys[i][0].Compare(keys[j][0]) < 0
	})
	for _, k := range keys {
		cn := conns[k]
		if cn.bytes == 0 {
			continue
		}
		exit, ok := byIP[cn.exit.Addr()]
		if !ok {
			// The server saw an address that is not a node's: traffic that
			// bypassed the tunnels. Not a flow the adversary must attack,
			// but the test bed is broken; say so.
			leaks[fmt.Sprintf("server saw a connection from %s (not a node) on port %d", cn.exit, cn.port)] = true
			continue
		}
		f := cn.flow
		f.Initiator = c.Initiators[cn.port]
		f.Exit = exit
		f.Start, f.End = max(cn.first, c.FlowStart), min(cn.end, c.FlowEnd)
		a.Flows = append(a.Flows, f)
	}
	for l := range leaks {
		a.Leaks = append(a.Leaks, l)
	}
	sort.Strings(a.Leaks)
	return a, nil
}
