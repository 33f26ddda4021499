package nodetest

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// The harness runs inside a testing/synctest bubble: the nodes converge,
// a tunnel is built and answers a ping, all on the bubble's fake clock,
// and every goroutine ends when the network closes (synctest.Test fails
// otherwise).
func TestRunsInSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		tn := Start(t, Config{Nodes: 5, K: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tun, err := tn.Nodes[0].BuildTunnel(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tun.Ping(ctx, 1); err != nil {
			t.Fatalf("ping through the tunnel: %v", err)
		}
		t.Logf("converged, built and pinged in %v of the bubble's time", time.Since(start))
		tn.Close()
	})
}
