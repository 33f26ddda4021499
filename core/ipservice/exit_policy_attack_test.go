package ipservice

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

func udpTo(dst netip.AddrPort, payload []byte) []byte {
	if dst.Addr().Is4() {
		return udpPacket(netip.MustParseAddrPort("100.64.0.2:40000"), dst, payload)
	}
	return udpPacket(netip.MustParseAddrPort("[fd7a:7a72:7a6e::2]:40000"), dst, payload)
}

// exitAttackDsts are what a hostile client asks an exit for to reach the
// exit's own host or network: IPv6 forms carrying loopback, link-local
// (the cloud metadata service) or private IPv4, and reserved IPv4.
var exitAttackDsts = []string{
	"[64:ff9b::7f00:1]:80",                      // NAT64 of 127.0.0.1
	"[2002:7f00:1::1]:80",                       // 6to4 of 127.0.0.1
	"[::127.0.0.1]:80",                          // IPv4-compatible 127.0.0.1
	"240.0.0.1:80",                              // reserved
	"[::ffff:0:a9fe:a9fe]:80",                   // IPv4-translated 169.254.169.254
	"[64:ff9b:1:a9fe:a9:fe00::]:80",             // NAT64 local-use /48 of 169.254.169.254
	"[2001:0:4136:e378:8000:63bf:f5ff:fffe]:80", // Teredo client 10.0.0.1
	"[2001:0:7f00:1::f7f7:f7f7]:80",             // Teredo server 127.0.0.1
	"[2a00:1450:4001:81c:0:5efe:7f00:1]:80",     // ISATAP of 127.0.0.1
	"192.0.2.1:80",                              // documentation
	"198.18.0.1:80",                             // benchmarking
	"[2001:db8::1]:80",                          // documentation
}

// TestExitPolicyAttackEmbeddedIPv4: a client (the attacker, sending raw
// DATA through a real tunnel, so no client-side check applies) asks an
// exit with the default policy for each hostile destination. The exit
// must answer each with ICMP unreachable, count it, and hand none of them
// to its adapter.
func TestExitPolicyAttackEmbeddedIPv4(t *testing.T) {
	synctest.Test(t, testExitPolicyAttackEmbeddedIPv4)
}

func testExitPolicyAttackEmbeddedIPv4(t *testing.T) {
	in := startIPNet(t, nil) // default policy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	it, err := in.svcs[0].buildTunnel(ctx, 3, nil) // as node.BuildTunnel, replies to the client adapter
	if err != nil {
		t.Fatal(err)
	}
	tun := it.t
	exitNode := in.ByID(tun.Hops()[2].ID)
	for _, d := range exitAttackDsts {
		if err := tun.SendData(udpTo(netip.MustParseAddrPort(d), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	refused := map[netip.Addr]bool{}
	deadline := time.After(10 * time.Second)
	for len(refused) < len(exitAttackDsts) {
		select {
		case back := <-in.client.Written():
			info, err := ippkt.Parse(back.Buf[:back.N])
			if err != nil || (info.ICMPType != 3 && info.ICMPType != 1) {
				t.Fatalf("want ICMP unreachable, got %+v (%v)", info, err)
			}
			// The refused packet is quoted after the 8-byte ICMP header.
			quoted, err := ippkt.Parse(back.Buf[info.PayloadOffset+8 : back.N])
			if err == nil {
				refused[quoted.Dst] = true
			}
		case <-deadline:
			goto done
		}
	}
done:
	for i, f := range in.exits {
		for {
			select {
			case p := <-f.Written():
				info, _ := ippkt.Parse(p.Buf[:p.N])
				t.Errorf("exit %d's adapter was handed a packet for %s", i, info.Dst)
				continue
			default:
			}
			break
		}
	}
	for _, d := range exitAttackDsts {
		if a := netip.MustParseAddrPort(d).Addr(); !refused[a] {
			t.Errorf("no ICMP refusal for %s", a)
		}
	}
	if got := exitNode.Stat(DropExitPolicy); got != uint64(len(exitAttackDsts)) {
		t.Errorf("%s = %d, want %d", DropExitPolicy, got, len(exitAttackDsts))
	}
	// The first nine but the reserved 240.0.0.1 are refused for the IPv4
	// address they carry.
	if got := exitNode.Stat(DropExitPolicyEmbedded); got != 8 {
		t.Errorf("%s = %d, want 8", DropExitPolicyEmbedded, got)
	}
}

// TestExitPolicyKeepsResolverExempt: the in-tunnel resolver addresses lie
// in ranges the default policy rejects (100.64.0.0/10, fc00::/7) but are
// answered by the exit itself, so they still reach the exit adapter.
func TestExitPolicyKeepsResolverExempt(t *testing.T) {
	synctest.Test(t, testExitPolicyKeepsResolverExempt)
}

func testExitPolicyKeepsResolverExempt(t *testing.T) {
	in := startIPNet(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	it, err := in.svcs[0].buildTunnel(ctx, 3, nil) // as node.BuildTunnel, replies to the client adapter
	if err != nil {
		t.Fatal(err)
	}
	tun := it.t
	var exit *adaptertest.Fake
	for i, n := range in.Nodes {
		if n.ID() == tun.Hops()[2].ID {
			exit = in.exits[i]
		}
	}
	for _, d := range []string{"100.64.0.53:53", "[fd7a:7a72:7a6e::53]:53"} {
		dst := netip.MustParseAddrPort(d)
		if err := tun.SendData(udpTo(dst, []byte("q"))); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-exit.Written():
			if info, err := ippkt.Parse(p.Buf[:p.N]); err != nil || info.Dst != dst.Addr() {
				t.Fatalf("exit adapter got %+v (%v), want a packet to %s", info, err, dst)
			}
		case back := <-in.client.Written():
			t.Fatalf("resolver %s refused: %x", d, back.Buf[:back.N])
		case <-time.After(5 * time.Second):
			t.Fatalf("resolver packet to %s never reached the exit adapter", d)
		}
	}
}
