package adaptertest_test

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// The fake passes the suite it ships with; the core's tests rely on it
// behaving like a real adapter.
func TestFakeConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		return adaptertest.Subject{
			Adapter: adaptertest.New(adapter.RoleExit),
			Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
				p := adaptertest.Probe()
				a.(*adaptertest.Fake).Inject(adapter.Packet{Buf: p, N: len(p), Flow: 7})
				return 7
			},
		}
	})
}
