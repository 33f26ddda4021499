package ipservice

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// appTCP models what an application's TCP does with a RST (RFC 9293
// §3.10.7 with RFC 5961 §3.2, which Linux implements): in SYN-SENT it
// takes a RST whose ACK acknowledges its SYN; once synchronized, only a
// RST whose sequence number is exactly RCV.NXT resets the connection, one
// elsewhere in the window draws a challenge ACK, one outside it is
// dropped.
type appTCP struct {
	app, srv netip.AddrPort
	synSent  bool
	sndNxt   uint32
	rcvNxt   uint32
	rcvWnd   uint32
}

// accepts reports whether rst resets the connection, and why not.
func (a *appTCP) accepts(rst []byte) (bool, string) {
	if err := ippkt.Verify(rst); err != nil {
		return false, fmt.Sprintf("bad checksum: %v", err)
	}
	in, err := ippkt.Parse(rst)
	if err != nil || in.Proto != ippkt.ProtoTCP {
		return false, fmt.Sprintf("not TCP: %+v %v", in, err)
	}
	if netip.AddrPortFrom(in.Src, in.SrcPort) != a.srv || netip.AddrPortFrom(in.Dst, in.DstPort) != a.app {
		return false, fmt.Sprintf("addressed %v:%d -> %v:%d, not server -> application", in.Src, in.SrcPort, in.Dst, in.DstPort)
	}
	t := rst[in.PayloadOffset:]
	seq, ack, flags := binary.BigEndian.Uint32(t[4:]), binary.BigEndian.Uint32(t[8:]), t[13]
	if flags&tcpRST == 0 {
		return false, "RST flag not set"
	}
	if a.synSent {
		if flags&tcpACK == 0 || ack != a.sndNxt {
			return false, fmt.Sprintf("SYN-SENT needs ACK %d, got flags %#x ack %d", a.sndNxt, flags, ack)
		}
		return true, ""
	}
	if seq == a.rcvNxt {
		return true, ""
	}
	if seq-a.rcvNxt < a.rcvWnd {
		return false, fmt.Sprintf("seq %d in window but not RCV.NXT %d: challenge ACK only", seq, a.rcvNxt)
	}
	return false, fmt.Sprintf("seq %d outside the window at RCV.NXT %d: dropped", seq, a.rcvNxt)
}

// seg builds a TCP segment with valid checksums.
func seg(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload int) []byte {
	k := flowKey{app: src, srv: dst}
	b := appSegment(nil, k, seq, ack, flags)
	b = append(b, make([]byte, payload)...)
	tcpOff := 20
	if !src.Addr().Is4() {
		tcpOff = 40
		binary.BigEndian.PutUint16(b[4:], uint16(20+payload))
	} else {
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		binary.BigEndian.PutUint16(b[10:], ippkt.Checksum(b[:20], 0))
	}
	t := b[tcpOff:]
	binary.BigEndian.PutUint16(t[14:], 65535) // window
	binary.BigEndian.PutUint16(t[16:], ippkt.Checksum(t, ippkt.PseudoSum(src.Addr(), dst.Addr(), ippkt.ProtoTCP, len(t))))
	return b
}

// flowRun plays a connection through a tracker, the application's side
// as its TCP would track it.
type flowRun struct {
	t   *testing.T
	ft  *flowTracker
	tcp appTCP
}

func newFlowRun(t *testing.T, app, srv string) *flowRun {
	r := &flowRun{t: t, ft: &flowTracker{}}
	r.tcp = appTCP{app: netip.MustParseAddrPort(app), srv: netip.MustParseAddrPort(srv), rcvWnd: 65535}
	return r
}

func (r *flowRun) fromApp(seq, ack uint32, flags byte, n int) {
	p := seg(r.tcp.app, r.tcp.srv, seq, ack, flags, n)
	in, err := ippkt.Parse(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.ft.fromApp(p, in)
}

func (r *flowRun) toApp(seq, ack uint32, flags byte, n int) {
	p := seg(r.tcp.srv, r.tcp.app, seq, ack, flags, n)
	in, err := ippkt.Parse(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.ft.toApp(p, in)
}

// mustReset asserts that the tracker's resets end the application's
// connection, and that every RST it sends is valid.
func (r *flowRun) mustReset() {
	r.t.Helper()
	rsts, flows := r.ft.resets()
	if flows != 1 || len(rsts) == 0 {
		r.t.Fatalf("resets: %d packets for %d flows, want at least one for 1 flow", len(rsts), flows)
	}
	var why []string
	for _, rst := range rsts {
		ok, reason := r.tcp.accepts(rst)
		if ok {
			return
		}
		why = append(why, reason)
	}
	r.t.Fatalf("the application's TCP accepts none of the %d RSTs: %v", len(rsts), why)
}

func TestFlowResetAcceptedByApplication(t *testing.T) {
	for _, fam := range []struct{ name, app, srv string }{
		{"v4", "10.100.0.1:40000", "172.31.0.1:8080"},
		{"v6", "[fd00::1]:40000", "[2001:db8::7]:443"},
	} {
		t.Run(fam.name+"/syn-sent", func(t *testing.T) {
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(1000, 0, tcpSYN, 0)
			r.tcp.synSent, r.tcp.sndNxt = true, 1001
			r.mustReset()
		})
		t.Run(fam.name+"/acked-everything", func(t *testing.T) {
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(1000, 0, tcpSYN, 0)
			r.toApp(5000, 1001, tcpSYN|tcpACK, 0)
			r.fromApp(1001, 5001, tcpACK, 100) // request
			r.toApp(5001, 1101, tcpACK, 1200)
			r.fromApp(1101, 6201, tcpACK, 0)
			r.tcp.sndNxt, r.tcp.rcvNxt = 1101, 6201
			r.mustReset()
		})
		t.Run(fam.name+"/data-delivered-after-last-ack", func(t *testing.T) {
			// A download: the server's segments reached the application
			// after its last ACK left; RCV.NXT is past that ACK.
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(1000, 0, tcpSYN, 0)
			r.toApp(5000, 1001, tcpSYN|tcpACK, 0)
			r.fromApp(1001, 5001, tcpACK, 0)
			r.toApp(5001, 1001, tcpACK, 1200)
			r.toApp(6201, 1001, tcpACK, 1200)
			r.tcp.sndNxt, r.tcp.rcvNxt = 1001, 7401
			r.mustReset()
		})
		t.Run(fam.name+"/out-of-order-delivery", func(t *testing.T) {
			// A segment was lost before the application: it holds the
			// later one out of order and RCV.NXT stays at its last ACK.
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(1000, 0, tcpSYN, 0)
			r.toApp(5000, 1001, tcpSYN|tcpACK, 0)
			r.fromApp(1001, 5001, tcpACK, 0)
			r.toApp(6201, 1001, tcpACK, 1200) // 5001..6201 lost
			r.fromApp(1001, 5001, tcpACK, 0)  // duplicate ACK
			r.tcp.sndNxt, r.tcp.rcvNxt = 1001, 5001
			r.mustReset()
		})
		t.Run(fam.name+"/sequence-wraps", func(t *testing.T) {
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(0xffffff00, 0, tcpSYN, 0)
			r.toApp(0xfffffff0, 0xffffff01, tcpSYN|tcpACK, 0)
			r.fromApp(0xffffff01, 0xfffffff1, tcpACK, 0)
			r.toApp(0xfffffff1, 0xffffff01, tcpACK, 1200) // wraps past 0
			r.tcp.sndNxt, r.tcp.rcvNxt = 0xffffff01, 0xfffffff1+1200-1<<32
			r.mustReset()
		})
		t.Run(fam.name+"/reordered-old-ack-ignored", func(t *testing.T) {
			r := newFlowRun(t, fam.app, fam.srv)
			r.fromApp(1000, 0, tcpSYN, 0)
			r.toApp(5000, 1001, tcpSYN|tcpACK, 0)
			r.fromApp(1001, 9001, tcpACK, 0)
			r.fromApp(1001, 5001, tcpACK, 0) // an old segment, late
			r.tcp.sndNxt, r.tcp.rcvNxt = 1001, 9001
			r.mustReset()
		})
	}
}

func TestFlowTrackerForgetsEndedFlows(t *testing.T) {
	app, srv := "10.100.0.1:40000", "172.31.0.1:8080"
	r := newFlowRun(t, app, srv)
	r.fromApp(1000, 0, tcpSYN, 0)
	r.toApp(5000, 1001, tcpSYN|tcpACK, 0)
	r.fromApp(1001, 5001, tcpACK|tcpFIN, 0) // half close: still receiving
	if r.ft.count() != 1 {
		t.Fatalf("a half-closed flow was forgotten (it can still receive)")
	}
	r.toApp(5001, 1002, tcpACK|tcpFIN, 0)
	if r.ft.count() != 0 {
		t.Fatalf("a flow closed both ways is still tracked")
	}

	r = newFlowRun(t, app, srv)
	r.fromApp(1000, 0, tcpSYN, 0)
	r.toApp(5000, 1001, tcpRST|tcpACK, 0) // refused
	if r.ft.count() != 0 {
		t.Fatalf("a reset flow is still tracked")
	}
	r = newFlowRun(t, app, srv)
	r.fromApp(1000, 0, tcpSYN, 0)
	r.fromApp(1001, 0, tcpRST, 0) // the application aborted
	if r.ft.count() != 0 {
		t.Fatalf("a flow the application reset is still tracked")
	}
	if rsts, flows := r.ft.resets(); len(rsts) != 0 || flows != 0 {
		t.Fatalf("resets of an empty tracker: %d packets, %d flows", len(rsts), flows)
	}
}

// A server (or a hostile exit) cannot make the client's tracker grow:
// only segments from the application open an entry, and the application's
// own flows are bounded, the least recently seen forgotten first.
func TestFlowTrackerBounded(t *testing.T) {
	ft := &flowTracker{}
	srv := netip.MustParseAddrPort("172.31.0.1:8080")
	for i := 0; i < 10000; i++ {
		app := netip.AddrPortFrom(netip.MustParseAddr("10.100.0.1"), uint16(1000+i))
		p := seg(srv, app, 1, 1, tcpSYN|tcpACK, 0)
		in, _ := ippkt.Parse(p)
		ft.toApp(p, in)
	}
	if n := ft.count(); n != 0 {
		t.Fatalf("segments toward the application opened %d entries", n)
	}
	evicted := 0
	for i := 0; i < maxTrackedFlows+44; i++ {
		app := netip.AddrPortFrom(netip.MustParseAddr("10.100.0.1"), uint16(1000+i))
		p := seg(app, srv, 1, 0, tcpSYN, 0)
		in, _ := ippkt.Parse(p)
		if ft.fromApp(p, in) {
			evicted++
		}
		if i == maxTrackedFlows-1 { // flow 0 is used again before the tracker fills
			p := seg(netip.AddrPortFrom(app.Addr(), 1000), srv, 2, 1, tcpACK, 0)
			in, _ := ippkt.Parse(p)
			ft.fromApp(p, in)
		}
	}
	if n := ft.count(); n != maxTrackedFlows || evicted != 44 {
		t.Fatalf("tracking %d flows after %d evictions, want %d and 44", n, evicted, maxTrackedFlows)
	}
	k0 := flowKey{app: netip.AddrPortFrom(netip.MustParseAddr("10.100.0.1"), 1000), srv: srv}
	k1 := flowKey{app: netip.AddrPortFrom(netip.MustParseAddr("10.100.0.1"), 1001), srv: srv}
	if ft.m[k0] == nil || ft.m[k1] != nil {
		t.Fatalf("eviction did not take the least recently seen flow (flow 0 kept: %v, flow 1 gone: %v)", ft.m[k0] != nil, ft.m[k1] == nil)
	}
}

// Non-TCP packets, fragments and truncated headers are ignored.
func TestFlowTrackerIgnoresOtherPackets(t *testing.T) {
	ft := &flowTracker{}
	u := udpPacket(netip.MustParseAddrPort("10.100.0.1:5353"), netip.MustParseAddrPort("172.31.0.1:53"), []byte("q"))
	in, _ := ippkt.Parse(u)
	ft.fromApp(u, in)
	p := seg(netip.MustParseAddrPort("10.100.0.1:4000"), netip.MustParseAddrPort("172.31.0.1:80"), 1, 0, tcpSYN, 0)
	in, _ = ippkt.Parse(p)
	in.Fragment = true
	ft.fromApp(p, in)
	if ft.count() != 0 {
		t.Fatalf("tracked %d flows from a UDP packet and a TCP fragment", ft.count())
	}
}

// The tracker's cost on the data path: one segment of an established flow
// (the common case), among 64 tracked flows.
func BenchmarkFlowTrackerFromApp(b *testing.B) {
	ft := &flowTracker{}
	srv := netip.MustParseAddrPort("172.31.0.1:8080")
	var pkts [][]byte
	for i := 0; i < 64; i++ {
		pkts = append(pkts, seg(netip.AddrPortFrom(netip.MustParseAddr("10.100.0.1"), uint16(40000+i)), srv, 1000, 5000, tcpACK, 1200))
	}
	infos := make([]ippkt.Info, len(pkts))
	for i, p := range pkts {
		infos[i], _ = ippkt.Parse(p)
		ft.fromApp(p, infos[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i & 63
		ft.fromApp(pkts[k], infos[k])
	}
}
