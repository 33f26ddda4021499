package kcp

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func TestConformance(t *testing.T) {
	warmUp(t)
	transporttest.Run(t, func(t *testing.T) transport.Transport {
		tr, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}

// warmUp sends one datagram between two transports before the suite
// starts. kcp-go (v5.7 on) starts a process-wide pool of post-processing
// workers on its first session, at most eight, and never stops them; the
// suite's leak check counts goroutines started during a test, so the pool
// must exist before it takes its snapshot.
func warmUp(t *testing.T) {
	t.Helper()
	b := newNode(t, "", nil)
	a := newNode(t, "", nil)
	a.send(t, b.addr, []byte("warm-up"))
	b.expect(t, "warm-up")
	a.close()
	b.close()
}
