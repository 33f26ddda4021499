package ipservice

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// These tests play an application's TCP connection through a real tunnel
// of in-memory nodes (a fake client adapter, fake exit adapters), then
// take away what the connection depends on: the tunnel, or the exit
// adapter's state. The application must get a RST it accepts at once,
// not be left waiting on a connection nobody will ever answer.

// tcpPacketForTest builds an IPv4 TCP segment with valid checksums.
func tcpPacketForTest(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload int) []byte {
	b := make([]byte, 40+payload)
	b[0], b[8], b[9] = 0x45, 64, ippkt.ProtoTCP
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], ippkt.Checksum(b[:20], 0))
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12], t[13] = 5<<4, flags
	binary.BigEndian.PutUint16(t[14:], 65535)
	binary.BigEndian.PutUint16(t[16:], ippkt.Checksum(t, ippkt.PseudoSum(src.Addr(), dst.Addr(), ippkt.ProtoTCP, len(t))))
	return b
}

// restartableFake is an exit adapter that says it was restarted (as the
// plugin client does when its child died and came back).
type restartableFake struct {
	*adaptertest.Fake
	restarts atomic.Uint64
}

func (f *restartableFake) Restarts() uint64 { return f.restarts.Load() }

type tcpBed struct {
	*svcNet
	client   *adaptertest.Fake
	exits    map[int]*restartableFake
	app, srv netip.AddrPort
	group    uint64
	exitIdx  int    // the exit the connection went through
	exitFlow uint64 // its adapter flow handle
}

// startTCPBed runs node 0 as a client and every other node as an exit,
// then opens a TCP connection from the application through a tunnel and
// carries a request and one segment of the answer. The application's
// RCV.NXT is then 5001+1200, its SND.NXT 1101.
func startTCPBed(t *testing.T) *tcpBed {
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:80", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	b := &tcpBed{client: adaptertest.New(adapter.RoleClient), exits: map[int]*restartableFake{},
		app: netip.MustParseAddrPort("100.64.0.2:40000"), srv: netip.MustParseAddrPort("198.51.100.7:80"), group: 7}
	b.svcNet = startSvcNet(t, 7, 3, func(i int, o *node.Options) *Options {
		if i == 0 {
			return &Options{ClientAdapter: b.client}
		}
		f := &restartableFake{Fake: adaptertest.New(adapter.RoleExit)}
		b.exits[i] = f
		o.Exit, o.ExitPolicy = true, pol
		return &Options{ExitAdapter: f}
	})
	inject := func(p []byte) { b.client.Inject(adapter.Packet{Buf: p, N: len(p), Flow: b.group}) }

	// SYN, sent again now and then: a tunnel built while the network
	// settles may fail.
	syn := tcpPacketForTest(b.app, b.srv, 1000, 0, 0x02, 0)
	inject(syn)
	deadline := time.After(20 * time.Second)
	resend := time.NewTicker(time.Second)
	defer resend.Stop()
	for b.exitIdx == 0 {
		for i, f := range b.exits {
			select {
			case got := <-f.Written():
				b.exitIdx, b.exitFlow = i, got.Flow
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no exit received the SYN")
		case <-resend.C:
			inject(syn)
		case <-time.After(5 * time.Millisecond):
		}
	}
	exit := b.exits[b.exitIdx]
	fromServer := func(p []byte) { exit.Inject(adapter.Packet{Buf: p, N: len(p), Flow: b.exitFlow}) }
	fromServer(tcpPacketForTest(b.srv, b.app, 5000, 1001, 0x12, 0))
	b.awaitApp(t, func(p []byte) bool { return p[33] == 0x12 }, "the SYN-ACK")
	inject(tcpPacketForTest(b.app, b.srv, 1001, 5001, 0x10, 100))
	for got := false; !got; {
		select {
		case p := <-exit.Written():
			got = p.N == 40+100
		case <-time.After(10 * time.Second):
			t.Fatal("the exit did not receive the request")
		}
	}
	fromServer(tcpPacketForTest(b.srv, b.app, 5001, 1101, 0x10, 1200))
	b.awaitApp(t, func(p []byte) bool { return len(p) == 40+1200 }, "the answer")
	return b
}

// awaitApp waits for a TCP packet to the application that match accepts,
// skipping others (ICMP from an earlier failed attempt, retransmissions).
func (b *tcpBed) awaitApp(t *testing.T, match func([]byte) bool, what string) adapter.Packet {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-b.client.Written():
			pkt := p.Buf[:p.N]
			if in, err := ippkt.Parse(pkt); err == nil && in.Proto == ippkt.ProtoTCP && len(pkt) >= 40 && match(pkt) {
				return p
			}
		case <-timeout:
			t.Fatalf("the application did not receive %s", what)
		}
	}
}

// awaitReset waits for a RST the application's TCP accepts: from the
// server, for its connection, with seq = its RCV.NXT.
func (b *tcpBed) awaitReset(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(limit)
	for {
		select {
		case p := <-b.client.Written():
			pkt := p.Buf[:p.N]
			in, err := ippkt.Parse(pkt)
			if err != nil || in.Proto != ippkt.ProtoTCP || pkt[33]&0x04 == 0 {
				continue
			}
			seq := binary.BigEndian.Uint32(pkt[24:])
			if netip.AddrPortFrom(in.Src, in.SrcPort) != b.srv || netip.AddrPortFrom(in.Dst, in.DstPort) != b.app {
				t.Fatalf("a RST %v:%d -> %v:%d, not for the connection", in.Src, in.SrcPort, in.Dst, in.DstPort)
			}
			if err := ippkt.Verify(pkt); err != nil {
				t.Fatalf("the RST's checksums are wrong: %v", err)
			}
			if p.Flow != b.group {
				t.Fatalf("the RST went to group %d, want %d", p.Flow, b.group)
			}
			if seq != 5001+1200 {
				t.Logf("a RST with seq %d, flags %#x: not RCV.NXT (a challenge ACK at most)", seq, pkt[33])
				continue
			}
			return time.Since(start)
		case <-timeout:
			t.Fatalf("the application got no RST it accepts within %v", limit)
		}
	}
}

// The tunnel carrying a connection goes away (here: closed; a rebuild on a
// fresh path calls the same exitLost): the application gets its RST at
// once instead of waiting for its own timeout.
func TestTunnelLossResetsApplicationFlows(t *testing.T) {
	synctest.Test(t, testTunnelLossResetsApplicationFlows)
}

func testTunnelLossResetsApplicationFlows(t *testing.T) {
	b := startTCPBed(t)
	src := b.svcs[0]
	src.client.mu.Lock()
	ts := append([]*ipTunnel(nil), src.client.byFlow[b.group]...)
	src.client.mu.Unlock()
	if len(ts) == 0 {
		t.Fatal("the client has no tunnel for the group")
	}
	for _, tun := range ts {
		tun.t.Close()
	}
	took := b.awaitReset(t, 5*time.Second)
	t.Logf("the application's connection was reset %v after its tunnel closed", took)
}

// The exit adapter restarted (its child died and came back without its
// NAT state): every TCP flow through the exit is reset down its circuit.
func TestExitAdapterRestartResetsFlows(t *testing.T) {
	synctest.Test(t, testExitAdapterRestartResetsFlows)
}

func testExitAdapterRestartResetsFlows(t *testing.T) {
	b := startTCPBed(t)
	exitNode := b.Nodes[b.exitIdx]
	b.exits[b.exitIdx].restarts.Add(1)
	took := b.awaitReset(t, 5*time.Second)
	t.Logf("the application's connection was reset %v after the exit adapter restarted", took)
	if got := exitNode.Stat("exit_flows_reset"); got != 1 {
		t.Errorf("exit_flows_reset = %d, want 1", got)
	}
	// The tunnel itself survives: the next connection goes through.
	syn := tcpPacketForTest(netip.MustParseAddrPort("100.64.0.2:40001"), b.srv, 7000, 0, 0x02, 0)
	b.client.Inject(adapter.Packet{Buf: syn, N: len(syn), Flow: b.group})
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-b.exits[b.exitIdx].Written():
			if p.N >= 40 && binary.BigEndian.Uint16(p.Buf[20:]) == 40001 {
				return
			}
		case <-timeout:
			t.Fatal("a new connection through the same tunnel did not reach the exit")
		}
	}
}

// Status lists the client's tunnels with their hops, first hop first, so
// a script finds the relays a transfer goes through.
func TestStatusListsClientTunnels(t *testing.T) { synctest.Test(t, testStatusListsClientTunnels) }

func testStatusListsClientTunnels(t *testing.T) {
	b := startTCPBed(t)
	var st struct{ ClientTunnels []ClientTunnelStatus }
	st.ClientTunnels = b.svcs[0].ClientTunnels()
	var found *ClientTunnelStatus
	for i, ct := range st.ClientTunnels {
		if !ct.Spare && ct.Flow == b.group && ct.TCPFlows > 0 {
			found = &st.ClientTunnels[i]
		}
	}
	if found == nil {
		t.Fatalf("no tunnel of group %d with a TCP flow in %+v", b.group, st.ClientTunnels)
	}
	if len(found.Hops) != 3 || found.TCPFlows != 1 {
		t.Fatalf("tunnel %+v: want 3 hops and 1 TCP flow", *found)
	}
	if exit := b.Nodes[b.exitIdx].ID(); found.Hops[2] != exit {
		t.Fatalf("last hop %s, but the connection left through %s", found.Hops[2].Short(), exit.Short())
	}
	if found.Hops[0] == found.Hops[1] || found.Hops[1] == found.Hops[2] {
		t.Fatalf("hops repeat: %v", found.Hops)
	}
	for _, ct := range st.ClientTunnels[:len(st.ClientTunnels)-1] {
		if ct.Spare && !st.ClientTunnels[len(st.ClientTunnels)-1].Spare {
			t.Fatalf("a spare is listed before a tunnel in use: %+v", st.ClientTunnels)
		}
	}
}
