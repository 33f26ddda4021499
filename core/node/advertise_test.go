package node

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// advTransport records SetAdvertised and whether it came after Listen.
type advTransport struct {
	transport.Transport
	listened bool
	calls    []netip.AddrPort
	order    bool // every call came after Listen
	refuse   error
}

func (a *advTransport) Listen(ap netip.AddrPort) (netip.AddrPort, error) {
	a.listened = true
	return a.Transport.Listen(ap)
}

func (a *advTransport) SetAdvertised(ap netip.AddrPort) error {
	a.calls = append(a.calls, ap)
	a.order = a.listened
	return a.refuse
}

func TestSetAdvertisedCalledAfterListen(t *testing.T) {
	for _, tc := range []struct {
		name      string
		listen    string
		advertise []netip.AddrPort
		want      netip.AddrPort
	}{
		{"wildcard with advertise", "0.0.0.0:7701", []netip.AddrPort{netip.MustParseAddrPort("127.9.0.1:7701"), netip.MustParseAddrPort("127.9.0.2:7701")}, netip.MustParseAddrPort("127.9.0.1:7701")},
		{"bound address", "127.9.0.3:7702", nil, netip.MustParseAddrPort("127.9.0.3:7702")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &advTransport{Transport: transporttest.NewNetwork().NewTransport()}
			n := startOne(t, tr, tc.listen, tc.advertise)
			defer n.Close()
			if len(tr.calls) != 1 || tr.calls[0] != tc.want || !tr.order {
				t.Fatalf("SetAdvertised calls %v (after Listen: %v); want one call with %v after Listen", tr.calls, tr.order, tc.want)
			}
		})
	}
}

func TestSetAdvertisedRefusalStopsStart(t *testing.T) {
	tr := &advTransport{Transport: transporttest.NewNetwork().NewTransport(), refuse: errors.New("no IPv6 here")}
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Identity: id, Transport: tr, Listen: netip.MustParseAddrPort("127.9.0.4:7703"),
		Discovery: newListDiscovery(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no IPv6 here") || !strings.Contains(err.Error(), "advertised") {
		t.Fatalf("Start: %v; want the transport's refusal of its advertised address", err)
	}
}

func startOne(t *testing.T, tr transport.Transport, listen string, adv []netip.AddrPort) *Node {
	t.Helper()
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Identity: id, Transport: tr, Listen: netip.MustParseAddrPort(listen), Advertise: adv,
		Discovery: newListDiscovery(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}
