package netstack

import (
	"context"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// The netstack adapter honours the adapter contract. Provoke is an
// application dialing 192.0.2.1:80 through the default group (Flow 0):
// its stack sends the connection's SYN, which nothing answers. The dial is
// cancelled, and waited for, before the suite closes the adapter and
// looks for leaked goroutines.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		a, err := NewAdapter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Subject{Adapter: a, Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if c, err := a.(*Adapter).DialContext(ctx, "tcp", "192.0.2.1:80"); err == nil {
					c.Close()
				}
			}()
			t.Cleanup(func() { cancel(); <-done })
			return 0
		}}
	})
}
