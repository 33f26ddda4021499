package node

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// gatedTransport holds every WriteBatch while the gate is shut.
type gatedTransport struct {
	transport.Transport
	mu   sync.Mutex
	shut bool
	open chan struct{}
}

func (g *gatedTransport) WriteBatch(pkts []transport.Packet) error {
	g.mu.Lock()
	shut, open := g.shut, g.open
	g.mu.Unlock()
	if shut {
		<-open
	}
	return g.Transport.WriteBatch(pkts)
}

func (g *gatedTransport) close() {
	g.mu.Lock()
	g.shut, g.open = true, make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedTransport) reopen() {
	g.mu.Lock()
	g.shut = false
	close(g.open)
	g.mu.Unlock()
}

// TrySendData sends while the writer is nearly idle and refuses, sending
// nothing, once inlineRoom frames wait for a stuck transport; AwaitRoom
// returns when the writer has drained its queue again.
func TestTrySendDataStopsAtInlineRoom(t *testing.T) {
	synctest.Test(t, testTrySendDataStopsAtInlineRoom)
}

func testTrySendDataStopsAtInlineRoom(t *testing.T) {
	var gate *gatedTransport
	tn := startNet(t, 6, 3, func(i int, o *Options) {
		if i == 0 {
			gate = &gatedTransport{Transport: o.Transport}
			o.Transport = gate
		}
	})
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatalf("BuildTunnel: %v", err)
	}
	pkt := make([]byte, 1200)
	if ok, err := tun.TrySendData(pkt); !ok || err != nil {
		t.Fatalf("TrySendData on an idle node: %v, %v; want sent", ok, err)
	}
	synctest.Wait()
	gate.close()
	sent := 0
	for ; sent < 2*inlineRoom; sent++ {
		ok, err := tun.TrySendData(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	// The writer holds one batch at the gate, inlineRoom more wait.
	if sent < inlineRoom || sent > inlineRoom+transport.BatchSize {
		t.Fatalf("TrySendData sent %d frames into a stuck writer, want %d to %d", sent, inlineRoom, inlineRoom+transport.BatchSize)
	}
	done := make(chan struct{})
	go func() { tun.AwaitRoom(); close(done) }()
	synctest.Wait()
	select {
	case <-done:
		t.Fatal("AwaitRoom returned while the writer was stuck")
	default:
	}
	gate.reopen()
	<-done
	if ok, err := tun.TrySendData(pkt); !ok || err != nil {
		t.Fatalf("TrySendData after the writer drained: %v, %v; want sent", ok, err)
	}
}
