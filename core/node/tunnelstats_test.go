package node

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// echoExit answers every DATA packet with the same packet.
type echoExit struct{}

func (echoExit) ExitData(c ExitCircuit, pkt []byte) { c.Reply(pkt) }
func (echoExit) ExitClosed(uint64)                  {}

// A tunnel counts the DATA it carries, both ways, in packets and bytes;
// the exit counts what it received and answered; the node's totals keep
// a closed tunnel's bytes; numbers count up and are never reused, slots
// are (the metrics' bounded label).
func TestTunnelStats(t *testing.T) { synctest.Test(t, testTunnelStats) }

func testTunnelStats(t *testing.T) {
	tn := startNet(t, 5, 4, func(i int, o *Options) {
		if i > 0 {
			o.Exit, o.ExitHandler = true, echoExit{}
		}
	})
	n := tn.nodes[0]
	var got atomic.Int64
	ctx := context.Background()
	tun, err := n.BuildTunnelWith(ctx, TunnelSpec{Hops: 3, Events: TunnelEvents{Data: func([]byte) { got.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	if tun.Number() != 1 {
		t.Fatalf("first tunnel's number %d, want 1", tun.Number())
	}
	time.Sleep(time.Second)
	for i := 0; i < 3; i++ {
		if err := tun.SendData(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 echoes", 10*time.Second, func() bool { return got.Load() == 3 })
	st := n.TunnelStats()
	if len(st) != 1 {
		t.Fatalf("TunnelStats: %+v, want one tunnel", st)
	}
	s := st[0]
	if s.Number != 1 || s.Slot != 0 || len(s.Hops) != 3 || s.BytesOut != 300 || s.BytesIn != 300 || s.PacketsOut != 3 || s.PacketsIn != 3 {
		t.Fatalf("tunnel stat %+v: want number 1, slot 0, 3 hops, 300 bytes and 3 packets each way", s)
	}
	if age := time.Since(s.Built); age < time.Second || age > 10*time.Second {
		t.Fatalf("tunnel age %v, want about 1 s", age)
	}
	exit := tn.byID(s.Hops[2]).TunnelTotals()
	if exit.ExitBytesIn != 300 || exit.ExitBytesOut != 300 || exit.ExitPacketsIn != 3 || exit.ExitPacketsOut != 3 {
		t.Fatalf("exit totals %+v, want 300 bytes, 3 packets each way", exit)
	}
	second, err := n.BuildTunnel(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if st := n.TunnelStats(); len(st) != 2 || st[1].Slot != 1 {
		t.Fatalf("two tunnels open: %+v, want the second in slot 1", st)
	}
	tun.Close()
	third, err := n.BuildTunnel(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	st = n.TunnelStats()
	if len(st) != 2 || st[0].Number != 2 || st[0].Slot != 1 || st[1].Number != 3 || st[1].Slot != 0 {
		t.Fatalf("after closing tunnel 1: %+v, want tunnel 2 kept in slot 1, tunnel 3 in the freed slot 0", st)
	}
	if n.TunnelByNumber(3) != third || n.TunnelByNumber(2) != second || n.TunnelByNumber(1) != nil {
		t.Fatal("TunnelByNumber does not find the open tunnels by number, or finds the closed one")
	}
	if tot := n.TunnelTotals(); tot.Built != 3 || tot.BytesIn != 300 || tot.BytesOut != 300 {
		t.Fatalf("node totals %+v, want 3 built and the closed tunnel's 300 bytes each way", tot)
	}
}
