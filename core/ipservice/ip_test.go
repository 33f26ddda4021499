package ipservice

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// udpPacket builds an IPv4 or IPv6 UDP packet with valid checksums.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	pkt, err := ippkt.AppendUDP(nil, src, dst, payload)
	if err != nil {
		panic(err) // a test's own addresses
	}
	return pkt
}

type ipNet struct {
	*svcNet
	client *adaptertest.Fake
	exits  map[int]*adaptertest.Fake
}

// startIPNet: node 0 is a client with a fake client adapter; every other
// node is an exit with a fake exit adapter and the given policy.
func startIPNet(t *testing.T, policy *exitpolicy.Policy) *ipNet {
	in := &ipNet{client: adaptertest.New(adapter.RoleClient), exits: map[int]*adaptertest.Fake{}}
	in.svcNet = startSvcNet(t, 7, 3, func(i int, o *node.Options) *Options {
		if i == 0 {
			return &Options{ClientAdapter: in.client}
		}
		f := adaptertest.New(adapter.RoleExit)
		in.exits[i] = f
		o.Exit, o.ExitPolicy = true, policy
		return &Options{ExitAdapter: f}
	})
	return in
}

func TestIPThroughTunnelAndBack(t *testing.T) { synctest.Test(t, testIPThroughTunnelAndBack) }

func testIPThroughTunnelAndBack(t *testing.T) {
	pol, err := exitpolicy.Parse([]string{"accept 198.51.100.0/24:9999", "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	in := startIPNet(t, pol)
	cli := netip.MustParseAddrPort("100.64.0.2:40000")
	srv := netip.MustParseAddrPort("198.51.100.7:9999")
	req := udpPacket(cli, srv, []byte("hello through three hops"))

	// An exit receives the packet, byte for byte. Like an application, the
	// test sends again now and then: a tunnel built while the network is
	// still settling may fail, and UDP promises nothing.
	var exit *adaptertest.Fake
	var got adapter.Packet
	deadline := time.After(20 * time.Second)
	resend := time.NewTicker(time.Second)
	defer resend.Stop()
	in.client.Inject(adapter.Packet{Buf: req, N: len(req), Flow: 7})
	for exit == nil {
		select {
		case <-resend.C:
			in.client.Inject(adapter.Packet{Buf: req, N: len(req), Flow: 7})
		default:
		}
		for _, f := range in.exits {
			select {
			case got = <-f.Written():
				exit = f
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("no exit received the packet")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if string(got.Buf[:got.N]) != string(req) {
		t.Fatal("the exit received a different packet")
	}
	if got.Flow == 0 {
		t.Fatal("exit packet has no flow handle")
	}
	reply := udpPacket(srv, cli, []byte("hello back"))
	exit.Inject(adapter.Packet{Buf: reply, N: len(reply), Flow: got.Flow})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case back := <-in.client.Written():
			if info, err := ippkt.Parse(back.Buf[:back.N]); err == nil && info.Proto == 1 {
				continue // an ICMP error from an attempt that failed earlier
			}
			if string(back.Buf[:back.N]) != string(reply) {
				t.Fatal("client received a different reply")
			}
			if back.Flow != 7 {
				t.Fatalf("reply delivered to flow %d, want 7", back.Flow)
			}
			return
		case <-timeout:
			t.Fatal("reply did not come back")
		}
	}
}

func TestExitPolicyRejectsFast(t *testing.T) { synctest.Test(t, testExitPolicyRejectsFast) }

func testExitPolicyRejectsFast(t *testing.T) {
	in := startIPNet(t, nil) // default policy: no loopback, no private ranges
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A tunnel of the client side with no constraint on its exit (as
	// node.BuildTunnel builds): what the exit sends goes to the client
	// adapter.
	it, err := in.svcs[0].buildTunnel(ctx, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	tun := it.t
	exitNode := in.ByID(tun.Hops()[2].ID)
	pkt := udpPacket(netip.MustParseAddrPort("100.64.0.2:40000"), netip.MustParseAddrPort("127.0.0.1:8080"), []byte("x"))
	start := time.Now()
	if err := tun.SendData(pkt); err != nil {
		t.Fatal(err)
	}
	select {
	case back := <-in.client.Written():
		info, err := ippkt.Parse(back.Buf[:back.N])
		if err != nil || info.Proto != 1 || info.ICMPType != 3 {
			t.Fatalf("want ICMP unreachable, got %+v (%v)", info, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("rejection took %v, want < 1s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ICMP unreachable for a rejected destination")
	}
	if exitNode.Stat(DropExitPolicy) != 1 {
		t.Errorf("%s = %d, want 1", DropExitPolicy, exitNode.Stat(DropExitPolicy))
	}
	for i, f := range in.exits {
		select {
		case p := <-f.Written():
			t.Fatalf("exit %d's adapter got a packet for a rejected destination: %x", i, p.Buf[:p.N])
		default:
		}
	}
}

func TestNoExitForDestinationFailsFast(t *testing.T) {
	synctest.Test(t, testNoExitForDestinationFailsFast)
}

func testNoExitForDestinationFailsFast(t *testing.T) {
	in := startIPNet(t, nil)
	// The default policy rejects private ranges, and every exit publishes
	// that: the client refuses locally with ICMP instead of timing out.
	pkt := udpPacket(netip.MustParseAddrPort("100.64.0.2:40000"), netip.MustParseAddrPort("10.1.2.3:80"), []byte("x"))
	in.client.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: 1})
	select {
	case back := <-in.client.Written():
		info, err := ippkt.Parse(back.Buf[:back.N])
		if err != nil || info.Proto != 1 || info.ICMPType != 3 {
			t.Fatalf("want ICMP unreachable, got %+v (%v)", info, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ICMP unreachable")
	}
	if in.Nodes[0].Stat(DropNoTunnel) == 0 {
		t.Error("drop not counted")
	}
}
