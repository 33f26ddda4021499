package testbed

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sim/adversary"
)

// synthNet writes the captures a small test bed would produce: node 0
// sends on/off bursts through 1 and 2 to the exit 3, which sends the
// cleartext to the server; nodes 4 and 5 chatter at random; every hop
// takes hop. It returns the Capture describing the files.
func synthNet(t *testing.T, hop time.Duration) (Capture, int) {
	t.Helper()
	dir := t.TempDir()
	const nodes = 6
	origin := time.Unix(1_700_000_000, 0)
	c := Capture{
		Server: netip.MustParseAddr(serverIP), ServerPcap: filepath.Join(dir, "server.pcap"),
		Initiators: map[uint16]int{PortBase + 1: 0},
		Origin:     origin, FlowStart: time.Second, FlowEnd: 11 * time.Second, Bin: 10 * time.Millisecond,
	}
	type rec struct {
		t     time.Time
		frame []byte
	}
	files := make([][]rec, nodes)
	var srv []rec
	for i := range nodes {
		c.Nodes = append(c.Nodes, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 1}), nodePort))
		c.NodePcaps = append(c.NodePcaps, filepath.Join(dir, fmt.Sprintf("n%d.pcap", i+1)))
	}
	seq := uint64(0)
	send := func(src, dst int, at time.Time, arrive bool) {
		seq++
		payload := make([]byte, FrameSize)
		binary.BigEndian.PutUint64(payload, seq) // every frame differs, as encrypted ones do
		f := EthernetIPv4(c.Nodes[src], c.Nodes[dst], 17, payload)
		files[src] = append(files[src], rec{at, f})
		if arrive {
			files[dst] = append(files[dst], rec{at.Add(hop), f})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	frames := 0
	exit := netip.MustParseAddrPort("10.4.0.1:40000")
	for ms := 1000; ms < 11000; ms += 20 {
		at := origin.Add(time.Duration(ms) * time.Millisecond)
		if (ms/1000)%2 == 1 { // on for a second, off for a second
			send(0, 1, at, true)
			send(1, 2, at.Add(hop), true)
			send(2, 3, at.Add(2*hop), true)
			frames += 3
			srv = append(srv, rec{at.Add(3 * hop), EthernetIPv4(exit, netip.AddrPortFrom(c.Server, PortBase+1), 6, make([]byte, 1200))})
		}
		if rng.IntN(2) == 0 {
			send(4, 5, at.Add(5*time.Millisecond), true)
			frames++
		}
		if rng.IntN(2) == 0 {
			send(5, 4, at.Add(7*time.Millisecond), true)
			frames++
		}
	}
	// A frame the receiver never captured, and one before the origin.
	send(4, 5, origin.Add(11500*time.Millisecond), false)
	send(4, 5, origin.Add(-time.Second), true)
	// A connection from an address that is not a node: a leak.
	srv = append(srv, rec{origin.Add(2 * time.Second), EthernetIPv4(netip.MustParseAddrPort("10.200.0.1:5555"), netip.AddrPortFrom(c.Server, PortBase+1), 6, make([]byte, 100))})
	write := func(path string, rs []rec) {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err := NewPcapWriter(f, snapLen)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := w.WritePacket(r.t, r.frame); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range nodes {
		write(c.NodePcaps[i], files[i])
	}
	write(c.ServerPcap, srv)
	return c, frames
}

func TestAnalyse(t *testing.T) {
	const hop = 2 * time.Millisecond
	c, frames := synthNet(t, hop)
	a, err := Analyse(c)
	if err != nil {
		t.Fatal(err)
	}
	if a.Frames != uint64(frames) {
		t.Errorf("%d frames in the flow period, want %d", a.Frames, frames)
	}
	if a.Unmatched != 1 || a.Matched != uint64(frames)+1 {
		t.Errorf("matched %d, unmatched %d; want %d and 1", a.Matched, a.Unmatched, frames+1)
	}
	if len(a.Leaks) != 1 {
		t.Errorf("leaks %q, want the connection from 10.200.0.1", a.Leaks)
	}
	if len(a.Flows) != 1 {
		t.Fatalf("%d flows, want 1", len(a.Flows))
	}
	f := a.Flows[0]
	if f.Initiator != 0 || f.Exit != 3 {
		t.Errorf("flow initiator %d exit %d, want 0 and 3", f.Initiator, f.Exit)
	}
	up := 0.0
	for _, v := range f.Up {
		up += v
	}
	if want := 1200.0 * float64(frames0(c)); up != want {
		t.Errorf("flow carried %v bytes up, want %v", up, want)
	}
	// Departures and arrivals: link 0→1's frames arrive hop later, in the
	// next bin when they leave at the end of one.
	for _, l := range a.Trace.Links() {
		if l.Src == 0 && l.Dst == 1 && l.Sent.Total() != l.Arrived.Total() {
			t.Errorf("link 0→1: %d sent, %d arrived", l.Sent.Total(), l.Arrived.Total())
		}
	}
	// The whole pipeline: the correlation attack names node 0.
	d := adversary.CorrelateFlows(a.Trace, a.Flows, adversary.Options{})
	if r := d[0].Ranking(); r[0] != 0 {
		t.Errorf("correlation ranks %v first, want node 0 (distribution %v)", r[0], d[0])
	}
}

// frames0 counts the flow's cleartext packets synthNet wrote: one per
// 20 ms during the on seconds (1, 3, 5, 7, 9) of the flow period.
func frames0(Capture) int { return 5 * 50 }

func TestAnalyseNeedsACapturePerNode(t *testing.T) {
	_, err := Analyse(Capture{Nodes: []netip.AddrPort{netip.MustParseAddrPort("10.1.0.1:7700")}})
	if err == nil {
		t.Fatal("no error for a node without a capture")
	}
}

// A failed run's tail is its nodes' warnings and errors, named; with
// none, the last lines of the first node's log.
func TestNodeLogTail(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"n1": "time=1 level=INFO msg=up\ntime=2 level=INFO msg=linked\n",
		"n2": "time=1 level=INFO msg=up\ntime=3 level=WARN msg=\"no eligible hop\"\ntime=4 level=ERROR msg=gone\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "node.log"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := nodeLogTail(dir, 40)
	if len(got) != 2 || got[0] != `n2: time=3 level=WARN msg="no eligible hop"` || got[1] != "n2: time=4 level=ERROR msg=gone" {
		t.Errorf("tail %q", got)
	}
	if got := nodeLogTail(dir, 1); len(got) != 1 || got[0] != "n2: time=4 level=ERROR msg=gone" {
		t.Errorf("tail of 1: %q", got)
	}
	os.Remove(filepath.Join(dir, "n2", "node.log"))
	if got := nodeLogTail(dir, 40); len(got) != 2 || got[1] != "n1: time=2 level=INFO msg=linked" {
		t.Errorf("tail without warnings %q", got)
	}
}
