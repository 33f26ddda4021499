package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// A relay that stops cleanly (Node.Close: SIGTERM) tears its circuits
// down both ways before it goes: the hop before it reports TRUNCATED at
// once and the hop after it frees the circuit, instead of both waiting
// out the link timeout.
func TestCloseTearsCircuitsDownBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn, src, tun, _ := idleTunnelNet(t)
		hops := tun.Hops()
		h1, h2, h3 := tn.byID(hops[0].ID), tn.byID(hops[1].ID), tn.byID(hops[2].ID)
		c := relayCirc(h1, src.id)
		start := time.Now()
		h2.Close()
		h2.Wait()
		took := time.Since(start)
		if took > time.Second {
			t.Errorf("Close took %v, want at most the 500 ms drain bound", took)
		}
		time.Sleep(200 * time.Millisecond)
		if hasNext(c) {
			t.Error("hop 1 still extends the circuit to the stopped hop 2")
		}
		if k := holds(h3, h2.id); k != 0 {
			t.Errorf("hop 3 still holds %d circuits from the stopped hop 2", k)
		}
		waitFor(t, "the initiator's repair", 10*time.Second, func() bool {
			return repairsOf(src) > 0
		})

		// The initiator stopping ends its tunnels at every hop.
		hops = tun.Hops()
		src.Close()
		src.Wait()
		time.Sleep(200 * time.Millisecond)
		for i, h := range hops {
			if k := tn.byID(h.ID).Status().Circuits; k != 0 {
				t.Errorf("hop %d holds %d circuits after the initiator stopped", i+1, k)
			}
		}
	})
}

// `tarzan node` stops on SIGTERM or interrupt by ending the context it
// started the node under (signal.NotifyContext): that path must say
// goodbye too. The initiator's context ends; every hop of its tunnel
// frees its circuit at once.
func TestContextEndSaysGoodbye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 6, 4, nil)
		tn.nodes[0].Close()
		tn.nodes[0].Wait()
		time.Sleep(time.Second)
		ctx, stop := context.WithCancel(context.Background())
		src, _ := tn.startAgainCtx(ctx, 0)
		tn.waitLinked(20 * time.Second)
		bctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := src.BuildTunnel(bctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		hops := tun.Hops()
		stop()
		src.Wait()
		time.Sleep(200 * time.Millisecond)
		for i, h := range hops {
			if k := holds(tn.byID(h.ID), src.id); k != 0 || tn.byID(h.ID).Status().Circuits != 0 {
				t.Errorf("hop %d still holds the circuit after the initiator's context ended", i+1)
			}
		}
		if got := src.Stat(EventCloseDestroys); got == 0 {
			t.Errorf("%s = 0", EventCloseDestroys)
		}
	})
}

// On shaped links the goodbye DESTROYs take the links' own slots (no
// burst that counts the circuits), and Close waits for them: here 10
// tunnels over one link shaped to 50 frames a second.
func TestCloseOnShapedLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 4, 3, func(i int, o *Options) { o.Cover = fixedRate(50) })
		src := tn.nodes[0]
		time.Sleep(2 * time.Second) // the cover policy has shaped every link
		if l := src.upLink(tn.nodes[1].id); l == nil || !l.shaped() {
			t.Fatal("the link to hop 1 is not shaped")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		path := []identity.ID{tn.nodes[1].id, tn.nodes[2].id}
		for range 10 {
			if _, err := src.BuildTunnelPath(ctx, path); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		src.Close()
		src.Wait()
		took := time.Since(start)
		time.Sleep(200 * time.Millisecond)
		t.Logf("Close took %v (virtual) for 10 DESTROYs on a link shaped to 50/s", took)
		if took > closeDrainLimit+100*time.Millisecond {
			t.Errorf("Close took %v, bound %v", took, closeDrainLimit)
		}
		for _, id := range path {
			if k := tn.byID(id).Status().Circuits; k != 0 {
				t.Errorf("%s holds %d circuits after the initiator stopped", id.Short(), k)
			}
		}
	})
}
