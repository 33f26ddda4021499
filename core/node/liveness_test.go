package node

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func unstartedNode(t *testing.T, tweak func(o *Options)) *Node {
	t.Helper()
	o := Options{
		Identity: newIdentity(t), Transport: transporttest.NewNetwork().NewTransport(),
		Listen: netip.MustParseAddrPort("127.9.0.1:7700"), Discovery: newListDiscovery(nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEvictionNeedsSomeoneHeard: silent peers are evicted, but not when
// every peer is silent: then this node is the one that was cut off, and
// emptying its view would strand it.
func TestEvictionNeedsSomeoneHeard(t *testing.T) {
	n := unstartedNode(t, nil)
	t0 := time.Unix(1_800_000_000, 0)
	for i := 1; i <= 3; i++ {
		d := &descriptor.Descriptor{Published: t0, Expires: t0.Add(time.Hour)}
		n.view.Add(&view.Peer{ID: identity.ID{byte(i)}, Desc: d, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), 7700), Admitted: t0})
	}
	silence := n.opts.PeerSilence
	later := t0.Add(silence + time.Second)
	n.evictSilent(later, silence)
	if n.view.Len() != 3 || n.Stat(EventEvictionsSkipped) != 1 {
		t.Fatalf("all silent: %d peers left (want 3), evictions_skipped %d (want 1)", n.view.Len(), n.Stat(EventEvictionsSkipped))
	}
	n.view.Touch(identity.ID{2}, later)
	n.evictSilent(later, silence)
	if n.view.Len() != 1 || n.Stat(EventEvictedSilent) != 2 {
		t.Fatalf("one heard: %d peers left (want 1), peers_evicted_silent %d (want 2)", n.view.Len(), n.Stat(EventEvictedSilent))
	}
	if _, ok := n.view.Get(identity.ID{2}); !ok {
		t.Fatal("the peer heard from was evicted")
	}
}

// TestAdmissionOptionsChecked: limits that could only refuse everything,
// and descriptor lifetimes peers would refuse, are option errors.
func TestAdmissionOptionsChecked(t *testing.T) {
	for name, tweak := range map[string]func(o *Options){
		"lifetime over the cap": func(o *Options) { o.DescriptorLifetime = descriptor.MaxLifetime + time.Second },
		"probe burst below 1":   func(o *Options) { o.ProbeBurst = -1 },
		"handshake burst 0":     func(o *Options) { o.HandshakeBurst = -3 },
		"silence too short":     func(o *Options) { o.PeerSilence = time.Millisecond },
		"no limiter sources":    func(o *Options) { o.LimiterSources = -1 },
	} {
		o := Options{
			Identity: newIdentity(t), Transport: transporttest.NewNetwork().NewTransport(),
			Listen: netip.MustParseAddrPort("127.9.0.1:7700"), Discovery: newListDiscovery(nil),
		}
		tweak(&o)
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: New = %v, want ErrOptions", name, err)
		}
	}
	// Negative rates switch limits off; that is allowed.
	unstartedNode(t, func(o *Options) { o.ProbeRate, o.HandshakeRate, o.PeerSilence = -1, -1, -1 })
}
