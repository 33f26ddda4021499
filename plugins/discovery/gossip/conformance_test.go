package gossip

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
)

func TestConformance(t *testing.T) {
	discoverytest.Run(t, func(t *testing.T) discovery.Discovery {
		d, err := New(map[string]string{"bootstrap": "127.0.0.1:7001", "interval": "50ms"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, discoverytest.Options{
		Self: selfDescriptor(t),
		Verify: func(b []byte) error {
			_, err := descriptor.Parse(b, time.Now())
			return err
		},
	})
}

// selfDescriptor is a valid signed descriptor for Start.
func selfDescriptor(t *testing.T) []byte {
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := &descriptor.Descriptor{Addrs: []descriptor.Addr{{Transport: "udp", AddrPort: netip.MustParseAddrPort("127.0.0.1:7000")}},
		Published: now, Expires: now.Add(time.Hour)}
	rand.Read(d.LinkKey[:])
	rand.Read(d.OnionKey[:])
	b, err := d.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
