package tun

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// inNamespace is a Device opened inside a test namespace: the device and
// its netlink socket stay there whatever thread later uses them.
type inNamespace struct {
	*Device
	t  *testing.T
	ns string
}

func (d inNamespace) Open(cfg adapter.Config) (err error) {
	inNetns(d.t, d.ns, func() { err = d.Device.Open(cfg) })
	return err
}

// The TUN adapter honours the adapter contract (root only: a namespace
// per subject). Provoke is an application in the namespace sending a UDP
// datagram into the tunnel routes; the TUN is one group, Flow 0.
func TestConformance(t *testing.T) {
	requireRoot(t)
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		ns := newNetns(t)
		a, err := New(map[string]string{"name": "tzc0", "state_dir": t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Subject{Adapter: inNamespace{a.(*Device), t, ns}, Provoke: func(t *testing.T, _ adapter.Adapter) uint64 {
			inNetns(t, ns, func() {
				uc, err := net.ListenUDP("udp4", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer uc.Close()
				if _, err := uc.WriteToUDPAddrPort([]byte("provoke"), netip.MustParseAddrPort("198.18.0.7:9999")); err != nil {
					t.Fatalf("send into the TUN: %v", err)
				}
			})
			return 0
		}}
	})
}
