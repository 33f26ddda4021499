package pnat

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// pnat honours the adapter contract. Provoke writes the suite's probe (a
// datagram to the documentation range, which the default policy rejects):
// the refusal, ICMP administratively prohibited, comes back on its flow.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		a, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Subject{Adapter: a, Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
			p := adaptertest.Probe()
			if _, err := a.WritePackets([]adapter.Packet{{Buf: p, N: len(p), Flow: 7}}); err != nil {
				t.Fatalf("WritePackets: %v", err)
			}
			return 7
		}}
	})
}
