package redteam

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// Destinations the default exit policy must refuse, written in forms that
// hide a refused IPv4 address inside an IPv6 one, or that are reserved.
// A refused packet never reaches the exit's NAT; one that does would be
// dialled by the exit (issue 10: the exit dialled the first four).
var forbiddenDestinations = []string{
	"[64:ff9b::7f00:1]:53",                      // NAT64 well-known prefix, embeds 127.0.0.1
	"[2002:7f00:1::1]:53",                       // 6to4, embeds 127.0.0.1
	"[::127.0.0.1]:53",                          // IPv4-compatible, embeds 127.0.0.1
	"240.0.0.1:53",                              // reserved (240/4)
	"[::ffff:10.0.0.1]:53",                      // IPv4-mapped, embeds 10.0.0.1
	"[64:ff9b:1:a00:0:100::]:53",                // NAT64 local-use prefix (RFC 8215, /48 layout), embeds 10.0.0.1
	"[2001:0:4136:e378:8000:63bf:f5ff:fffe]:53", // Teredo, client 10.0.0.1
	"[fe80::5efe:a00:1]:53",                     // ISATAP, embeds 10.0.0.1
	"0.0.0.1:53",                                // "this network"
	"255.255.255.255:53",                        // limited broadcast
	"127.0.0.1:53", "10.1.2.3:53", "[::1]:53", "169.254.1.1:53", "[fe80::1]:53",
}

func init() {
	register(Attack{
		Name:     "exit-embedded",
		Finding:  "exit policy gaps: IPv6 forms embedding a refused IPv4 address, and reserved IPv4, reach the exit's NAT",
		Severity: "medium",
		Run:      runExitEmbedded,
	})
}

// runExitEmbedded: a client builds a tunnel to an exit running the default
// policy and sends one UDP packet to each forbidden destination. It gains
// one point per packet the exit hands to its NAT; a passive client that
// only sends what the policy allows gets none there.
func runExitEmbedded(ctx context.Context, size Size) (Result, error) {
	const exitIdx = 0
	fake := adaptertest.New(adapter.RoleExit)
	nt, err := StartNet(ctx, NetConfig{Nodes: 4, K: 3, Tweak: func(i int, o *node.Options) {
		if i == exitIdx {
			o.Exit = true
		}
	}, IP: func(i int) *ipservice.Options {
		if i == exitIdx {
			return &ipservice.Options{ExitAdapter: fake}
		}
		return nil
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	exit := nt.Nodes[exitIdx]
	// The attacker is any node with a link to the exit: a one-hop tunnel is
	// enough to reach the exit's policy check.
	var client *node.Node
	for _, n := range nt.Nodes[1:] {
		for _, m := range n.Mimics() {
			if m.ID == exit.ID() && m.Up {
				client = n
			}
		}
	}
	if client == nil {
		return Result{}, fmt.Errorf("no node has a link to the exit")
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tun, err := client.BuildTunnelPath(bctx, []identity.ID{exit.ID()})
	if err != nil {
		return Result{}, fmt.Errorf("building a tunnel to the exit: %w", err)
	}
	defer tun.Close()

	before := exit.Stat(ipservice.DropExitPolicy)
	for _, d := range forbiddenDestinations {
		dst := netip.MustParseAddrPort(d)
		src := netip.MustParseAddrPort("100.64.0.2:40000")
		if dst.Addr().Is6() {
			src = netip.MustParseAddrPort("[fd7a:7a72:7a6e::2]:40000")
		}
		pkt, err := ippkt.AppendUDP(nil, src, dst, []byte("redteam"))
		if err != nil {
			return Result{}, err
		}
		if err := tun.SendData(pkt); err != nil {
			return Result{}, fmt.Errorf("sending to %s: %w", d, err)
		}
	}
	// Every packet is either refused (counted) or written to the NAT; wait
	// until all are accounted for.
	var reached []string
	deadline := time.After(10 * time.Second)
	for {
		refused := exit.Stat(ipservice.DropExitPolicy) - before
		if int(refused)+len(reached) >= len(forbiddenDestinations) {
			break
		}
		select {
		case p := <-fake.Written():
			reached = append(reached, dstOf(p))
		case <-deadline:
			return Result{}, fmt.Errorf("after 10 s only %d of %d packets were refused or delivered", refused, len(forbiddenDestinations))
		case <-time.After(10 * time.Millisecond):
		}
	}
	detail := fmt.Sprintf("%d forbidden destinations sent; %d refused (drop_exit_policy)", len(forbiddenDestinations), exit.Stat(ipservice.DropExitPolicy)-before)
	if len(reached) > 0 {
		detail += "; reached the NAT: " + strings.Join(reached, " ")
	}
	return Result{
		Metric:   "forbidden destinations handed to the exit's NAT",
		Attacker: float64(len(reached)),
		Passive:  0,
		Detail:   detail,
	}, nil
}

func dstOf(p adapter.Packet) string {
	b := p.Buf[:p.N]
	if len(b) >= 20 && b[0]>>4 == 4 {
		return netip.AddrFrom4([4]byte(b[16:20])).String()
	}
	if len(b) >= 40 {
		return netip.AddrFrom16([16]byte(b[24:40])).String()
	}
	return "?"
}
