package transportplugin

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// paramsUDP is the test udp transport with every optional interface of
// params.go; Params reports what the host told it, so a test reads back
// through one call what crossed the boundary.
type paramsUDP struct {
	*udpTransport
	mu    sync.Mutex
	adv   netip.AddrPort
	peers map[netip.AddrPort]string
}

func newParamsUDP(map[string]string) (transport.Transport, error) {
	return &paramsUDP{udpTransport: &udpTransport{}, peers: map[netip.AddrPort]string{}}, nil
}

func (p *paramsUDP) Params() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("adv=%v,peers=%d", p.adv, len(p.peers))
}

func (p *paramsUDP) SetPeerParams(addr netip.AddrPort, params string) error {
	if strings.ContainsAny(params, " \t") {
		return fmt.Errorf("testudp: bad parameters %q", params)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers[addr] = params
	return nil
}

func (p *paramsUDP) SetAdvertised(addr netip.AddrPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.adv = addr
	return nil
}

type paramsOnlyUDP struct{ *udpTransport }

func newParamsOnlyUDP(map[string]string) (transport.Transport, error) {
	return paramsOnlyUDP{&udpTransport{}}, nil
}

func (paramsOnlyUDP) Params() string { return "cert=abc,iat-mode=0" }

type implements struct{ params, peerParams, advertise bool }

func implementsOf(tr transport.Transport) implements {
	_, pr := tr.(transport.ParamsProvider)
	_, ps := tr.(transport.PeerParamsSetter)
	_, as := tr.(transport.AdvertiseSetter)
	return implements{pr, ps, as}
}

// The host's transport implements exactly the optional interfaces the
// child's does: none for a plugin without them (as every plugin from
// before these RPCs), some, or all.
func TestOptionalInterfacesFollowTheChild(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want implements
	}{
		{"udp", implements{}},
		{"socketonly", implements{}},
		{"paramsonly", implements{params: true}},
		{"params", implements{true, true, true}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			tr, err := Launch(helper(t, tc.mode), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if got := implementsOf(tr); got != tc.want {
				t.Fatalf("host transport implements %+v; the child's %+v", got, tc.want)
			}
			if _, ok := tr.(pluginkit.Reporter); !ok {
				t.Error("host transport is no longer a pluginkit.Reporter")
			}
			if pp, ok := tr.(transport.ParamsProvider); ok && tc.mode == "paramsonly" {
				if got := pp.Params(); got != "cert=abc,iat-mode=0" {
					t.Errorf("Params() = %q", got)
				}
			}
		})
	}
}

// Params, SetPeerParams and SetAdvertised reach the child, a refusal
// comes back as an error, and a restarted child is given the advertised
// address and peers' parameters again before packets move.
func TestParamsAcrossRestart(t *testing.T) {
	tr, err := Launch(helper(t, "params"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	bound, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	adv := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), bound.Port())
	if err := tr.(transport.AdvertiseSetter).SetAdvertised(adv); err != nil {
		t.Fatal(err)
	}
	ps := tr.(transport.PeerParamsSetter)
	for i := range 3 {
		if err := ps.SetPeerParams(netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(1000+i)), "cert=x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.SetPeerParams(netip.MustParseAddrPort("198.51.100.1:9"), "bad value"); err == nil || !strings.Contains(err.Error(), "bad parameters") {
		t.Errorf("SetPeerParams of parameters the child refuses: %v; want its error", err)
	}
	pp := tr.(transport.ParamsProvider)
	want := fmt.Sprintf("adv=%v,peers=3", adv)
	if got := pp.Params(); got != want {
		t.Fatalf("Params() = %q; want %q", got, want)
	}

	r := tr.(pluginkit.Reporter)
	pid := r.PluginStats().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil { // our own child, by PID
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for r.Restarts() < 1 || !r.PluginStats().Running {
		if time.Now().After(deadline) {
			t.Fatalf("no restart after SIGKILL: %+v", r.PluginStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := pp.Params(); got != want {
		t.Fatalf("after a restart Params() = %q; want %q (advertised address and peers replayed)", got, want)
	}
}
