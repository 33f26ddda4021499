package node

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/onion"
)

// Circuit lifecycle (lifecycle.go): a restart shows in the link
// handshake, a cell for a circuit the receiver does not hold is answered
// with DESTROY(GONE), idle expiry and Tunnel.Close end a tunnel (no
// repair), and a node that stops cleanly tears its circuits down both
// ways. Every test runs in a synctest bubble: the nodes' clocks, timers
// and the in-memory network all run on virtual time, so nothing depends
// on the machine's speed.

// crashRestart stops node i the way kill -9 does (its transport closes
// first, so nothing it would still say gets out) and starts a new process
// of it: the same identity and address, new link and onion keys, an
// empty view, no circuits. It is down for a second (descriptors carry
// whole seconds: its new one must be newer). It returns the new node and
// when it started.
func (tn *testNet) crashRestart(i int) (*Node, time.Time) {
	tn.t.Helper()
	old := tn.nodes[i]
	for _, s := range old.opts.Transports {
		s.Transport.Close()
	}
	old.Close()
	old.Wait()
	time.Sleep(time.Second)
	return tn.startAgain(i)
}

// startAgain starts a new process of node i (stopped) at its address.
func (tn *testNet) startAgain(i int) (*Node, time.Time) {
	return tn.startAgainCtx(context.Background(), i)
}

// startAgainCtx is startAgain with the context the node runs under.
func (tn *testNet) startAgainCtx(ctx context.Context, i int) (*Node, time.Time) {
	tn.t.Helper()
	old := tn.nodes[i]
	o := old.opts
	o.Transports = []TransportSpec{{Transport: tn.net.NewTransport(), Listen: old.opts.Transports[0].Listen}}
	var addrs []netip.AddrPort
	for j := range tn.nodes {
		addrs = append(addrs, addrOf(j))
	}
	d := newListDiscovery(addrs)
	o.Discovery = d
	n, err := New(o)
	if err != nil {
		tn.t.Fatal(err)
	}
	at := time.Now()
	if err := n.Start(ctx); err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[i], tn.disc[i] = n, d
	return n, at
}

func (tn *testNet) index(id identity.ID) int {
	for i, n := range tn.nodes {
		if n.id == id {
			return i
		}
	}
	tn.t.Fatalf("no node %s", id.Short())
	return -1
}

// relayCirc is the relay circuit n holds whose previous hop is prev (the
// test builds one tunnel through it), or nil.
func relayCirc(n *Node, prev identity.ID) *circuit {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, r := range n.routes {
		if r.c != nil && !r.fromNext && k.peer == prev {
			return r.c
		}
	}
	return nil
}

// hasNext reports whether relay circuit c still has a next side.
func hasNext(c *circuit) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextL != nil
}

// holds reports whether n holds any route on its link to peer.
func holds(n *Node, peer identity.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for key := range n.routes {
		if key.peer == peer {
			k++
		}
	}
	return k
}

// sessionSince reports whether n's link to peer sends on a session made
// at or after at.
func sessionSince(n *Node, peer identity.ID, at time.Time) bool {
	l := n.upLink(peer)
	if l == nil {
		return false
	}
	s, _ := l.sendSession()
	return s != nil && !s.Created().Before(at)
}

// destroySeen records the DESTROYs nodes receive, per receiver and
// sender.
type destroySeen struct {
	mu     sync.Mutex
	byPair map[[2]identity.ID][]destroyRec // [receiver, sender]
}

type destroyRec struct {
	circ   uint32
	reason byte
}

func newDestroySeen() *destroySeen { return &destroySeen{byPair: map[[2]identity.ID][]destroyRec{}} }

// tapFor is a Tap for the node at that records what it receives.
func (d *destroySeen) tapFor(at identity.ID) *Tap {
	return &Tap{Received: func(from identity.ID, pl []byte) bool {
		if pl[0] == kindDestroy {
			d.mu.Lock()
			k := [2]identity.ID{at, from}
			d.byPair[k] = append(d.byPair[k], destroyRec{binary.BigEndian.Uint32(pl[4:8]), pl[payloadHeader]})
			d.mu.Unlock()
		}
		return true
	}}
}

// get lists the DESTROYs at received from from.
func (d *destroySeen) get(at, from identity.ID) []destroyRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]destroyRec(nil), d.byPair[[2]identity.ID{at, from}]...)
}

// reasons lists the reasons of the DESTROYs at received from from.
func (d *destroySeen) reasons(at, from identity.ID) []byte {
	var out []byte
	for _, r := range d.get(at, from) {
		out = append(out, r.reason)
	}
	return out
}

func (d *destroySeen) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := 0
	for _, r := range d.byPair {
		k += len(r)
	}
	return k
}

// Attack: a relay in the middle of a tunnel crashes and comes back within
// the link timeout. Its neighbours' links never go down (its new
// handshake replaces the old session), so before protocol v3 the circuit
// through it stayed a black hole for good. Now its handshake says FRESH,
// and the hop before it ends the circuit's far side in that same
// handshake: the initiator hears TRUNCATED and repairs. The tunnel is
// idle throughout, so only the handshake can have told anyone.
func TestRestartedRelayEndsCircuitsAtHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 8, 4, nil)
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		hops := tun.Hops()
		h1 := tn.byID(hops[0].ID)
		c := relayCirc(h1, src.id)
		if c == nil || !hasNext(c) {
			t.Fatal("hop 1 holds no extended circuit for the tunnel")
		}
		_, restarted := tn.crashRestart(tn.index(hops[1].ID))
		waitFor(t, "hop 1's link to the restarted hop 2", 20*time.Second, func() bool {
			return sessionSince(h1, hops[1].ID, restarted)
		})
		linked := time.Now()
		t.Logf("hop 2 back and linked to hop 1 after %v (virtual)", linked.Sub(restarted))
		deadline := linked.Add(time.Second)
		for hasNext(c) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if hasNext(c) {
			time.Sleep(15 * time.Second)
			t.Fatalf("hop 1 still extends the circuit to the restarted hop 2 (a black hole) %v after their new handshake; still=%v after 15 s more",
				time.Second, hasNext(c))
		}
		t.Logf("hop 1 dropped the dead side %v after the handshake", time.Since(linked))
		waitFor(t, "the initiator's repair", 10*time.Second, func() bool {
			return src.Stat(EventTunnelsRepaired)+src.Stat(EventTunnelsRebuilt) > 0
		})
		for i := range tun.Hops() {
			if _, err := tun.Ping(ctx, i); err != nil {
				t.Fatalf("ping hop %d after the repair: %v", i+1, err)
			}
		}
		if got := h1.Stat(EventPeerRestarts); got == 0 {
			t.Errorf("%s = 0 at hop 1", EventPeerRestarts)
		}
	})
}

// The same for the tunnel's first hop: the initiator's own circuit on the
// link to it ends at the handshake.
func TestRestartedFirstHopEndsOwnTunnel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 8, 4, nil)
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		first, key := tun.circ()
		_ = first
		_, restarted := tn.crashRestart(tn.index(key.peer))
		waitFor(t, "the initiator's link to the restarted hop 1", 20*time.Second, func() bool {
			return sessionSince(src, key.peer, restarted)
		})
		time.Sleep(100 * time.Millisecond)
		src.mu.Lock()
		r, held := src.routes[key]
		src.mu.Unlock()
		if held && r.t == tun {
			t.Fatal("the initiator still routes its tunnel over the circuit the restarted hop 1 forgot")
		}
	})
}

// A rekey between two live processes never says FRESH and never costs a
// circuit: across several rekeys the tunnel keeps every hop.
func TestRekeyKeepsCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 6, 4, nil)
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		l := src.upLink(tun.Hops()[0].ID)
		s0, _ := l.sendSession()
		for range 4 {
			time.Sleep(link.RekeyAfterTime / 2)
			for i := range 3 {
				if _, err := tun.Ping(ctx, i); err != nil {
					t.Fatalf("ping hop %d: %v", i+1, err)
				}
			}
		}
		if s, _ := l.sendSession(); s == s0 {
			t.Fatal("the link to hop 1 was never rekeyed: the test tests nothing")
		}
		for _, n := range tn.nodes {
			if got := n.Stat(EventPeerRestarts); got != 0 {
				t.Errorf("%s: %s = %d after rekeys alone", n.id.Short(), EventPeerRestarts, got)
			}
		}
		if got := src.Stat(EventTunnelsRepaired) + src.Stat(EventTunnelsRebuilt); got != 0 {
			t.Errorf("%d repairs after rekeys alone", got)
		}
	})
}

// A relay that lost a circuit without its DESTROY getting through (here
// its state is simply dropped) answers the next cell for it with
// DESTROY(GONE): the hop before it learns, and the initiator repairs,
// instead of sending into a black hole until the tunnel idles out.
func TestUnknownCircuitAnsweredGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 8, 4, nil)
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		hops := tun.Hops()
		h1, h2 := tn.byID(hops[0].ID), tn.byID(hops[1].ID)
		c := relayCirc(h2, h1.id)
		h2.mu.Lock()
		delete(h2.routes, c.prev)
		delete(h2.routes, c.next)
		h2.releaseCircuitLocked(c.prev.peer)
		h2.mu.Unlock()
		if _, err := tun.Ping(ctx, 2); err == nil {
			t.Fatal("ping through a hop that forgot the circuit came back")
		}
		waitFor(t, "a repair after the hop forgot the circuit", 5*time.Second, func() bool {
			return src.Stat(EventTunnelsRepaired)+src.Stat(EventTunnelsRebuilt) > 0
		})
		if got := h2.Stat(EventGoneSent); got == 0 {
			t.Errorf("%s = 0 at the hop that forgot the circuit", EventGoneSent)
		}
	})
}

// A CREATED for a circuit we no longer hold (we gave up waiting, or
// forgot it) is answered DESTROY(GONE), so the hop that made the circuit
// frees it at once instead of holding a ghost until it idles out.
func TestStrayCreatedAnsweredGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 4, 3, nil)
		a, b := tn.nodes[0], tn.nodes[1]
		p, _ := a.view.Get(b.id)
		_, msg, err := onion.NewClientHandshake(a.opts.Rand, b.id, p.Desc.OnionKey)
		if err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		id := a.newCircIDLocked(b.id) // not registered: a never holds it
		a.mu.Unlock()
		pl := make([]byte, link.PayloadSize)
		pl[0] = kindCreate
		putCirc(pl, id)
		copy(pl[payloadHeader:], msg)
		made := b.Stat(EventCircuits)
		if err := a.SendLinkPayload(b.id, pl); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "b to make the circuit", 2*time.Second, func() bool { return b.Stat(EventCircuits) > made })
		time.Sleep(time.Second)
		if k := holds(b, a.id); k != 0 {
			t.Fatalf("b still holds the circuit a does not know, 1 s after its CREATED (a ghost until it idles out)")
		}
	})
}

// Attack: a mimic sends a burst of cells for circuits its peer does not
// hold, to make it answer each one (doubling what the burst costs it) or
// to learn something from the answers. The answers are bounded per link
// (the rest are dropped and counted), a DESTROY is never answered, and
// the only thing answered is the state of circuit IDs on the sender's own
// link.
func TestUnknownCircuitRepliesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seen := newDestroySeen()
		tn := startNet(t, 4, 3, func(i int, o *Options) {
			if i == 0 {
				o.Tap = seen.tapFor(o.Identity.ID())
			}
		})
		a, b := tn.nodes[0], tn.nodes[1]
		send := func(kind byte, id uint32) {
			pl := make([]byte, link.PayloadSize)
			pl[0] = kind
			putCirc(pl, id)
			if err := a.SendLinkPayload(b.id, pl); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 200 {
			send(kindDestroy, uint32(1000+i))
		}
		time.Sleep(time.Second)
		if k := seen.count(); k != 0 {
			t.Fatalf("%d DESTROYs answered a DESTROY for an unknown circuit", k)
		}
		const burst = 1000
		start := time.Now()
		for i := range burst {
			kind := byte(kindRelayFwd)
			if i%2 == 1 {
				kind = kindRelayBwd
			}
			send(kind, uint32(5000+i))
		}
		time.Sleep(100 * time.Millisecond)
		elapsed := time.Since(start).Seconds()
		got := seen.count()
		limit := goneReplyBurst + int(elapsed*goneReplyRate) + 1
		t.Logf("%d cells for unknown circuits, %d answered with DESTROY(GONE) in %.1f s (limit %d), %d dropped unanswered",
			burst, got, elapsed, limit, b.Stat(DropGoneReplyRate))
		if got == 0 {
			t.Fatal("no cell for an unknown circuit was answered")
		}
		if got > limit {
			t.Fatalf("%d answers to a burst of %d, want at most %d", got, burst, limit)
		}
		for _, r := range seen.get(a.id, b.id) {
			if r.reason != destroyGone || r.circ < 5000 || r.circ >= 5000+burst {
				t.Fatalf("answer %+v: want reason GONE on one of the sender's own circuit IDs", r)
			}
		}
		if d := b.Stat(DropGoneReplyRate); d < uint64(burst-limit) {
			t.Errorf("%s = %d, want at least %d", DropGoneReplyRate, d, burst-limit)
		}
	})
}

// Tunnel.Close ends the tunnel at every hop with DESTROY(FINISHED), each
// relay passing the reason on; any other reason is passed on as none, so
// a hop cannot use a reason to mark a circuit for a colluder further on.
func TestDestroyReasonsPassedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seen := newDestroySeen()
		tn := startNet(t, 6, 5, func(i int, o *Options) { o.Tap = seen.tapFor(o.Identity.ID()) })
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		path := []identity.ID{tn.nodes[1].id, tn.nodes[2].id, tn.nodes[3].id}
		tun, err := src.BuildTunnelPath(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		tun.Close()
		time.Sleep(time.Second)
		prev := src.id
		for i, id := range path {
			rs := seen.reasons(id, prev)
			if len(rs) != 1 || rs[0] != destroyFinished {
				t.Errorf("hop %d got DESTROY reasons %v from its previous hop, want [FINISHED]", i+1, rs)
			}
			prev = id
		}
		for _, n := range tn.nodes {
			if c := n.Status().Circuits; c != 0 {
				t.Errorf("%s holds %d circuits after Close", n.id.Short(), c)
			}
		}

		// A hostile hop 1 ends the circuit with a made-up reason: hop 3
		// must not see it.
		tun, err = src.BuildTunnelPath(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		h1, h2 := tn.nodes[1], tn.nodes[2]
		c := relayCirc(h1, src.id)
		c.mu.Lock()
		next := c.next
		c.mu.Unlock()
		pl := make([]byte, link.PayloadSize)
		pl[0] = kindDestroy
		putCirc(pl, next.id)
		pl[payloadHeader] = 0x77
		before := len(seen.reasons(tn.nodes[3].id, h2.id))
		if err := h1.SendLinkPayload(h2.id, pl); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		rs := seen.reasons(tn.nodes[3].id, h2.id)[before:]
		if len(rs) != 1 || rs[0] != destroyNone {
			t.Errorf("hop 3 got DESTROY reasons %v after hop 1 sent reason 0x77, want [none]", rs)
		}
	})
}

// idleExpiry builds count tunnels src → n1 → R → n3 and lets R, whose
// idle timeout is far shorter than everyone else's, expire them. Before
// protocol v3 each expiry reached the initiator as TRUNCATED from n1,
// which it repaired (the issue measured 8,468 repairs for 5,000 idle
// tunnels); now R says DESTROY(IDLE) both ways, n1 passes it on, and the
// initiator closes the tunnel.
func idleExpiry(t *testing.T, count int) {
	synctest.Test(t, func(t *testing.T) {
		const relayIdle = time.Minute
		tn := startNet(t, 7, 6, func(i int, o *Options) {
			o.MaxCircuits, o.MaxCircuitsPerLink, o.CreateRate = MaxCircuitsLimit, MaxCircuitsLimit, MaxCreateRate
			o.MaintenanceInterval = 250 * time.Millisecond
			if i == 2 {
				o.TunnelIdleTimeout = relayIdle
			}
		})
		src, r := tn.nodes[0], tn.nodes[2]
		path := []identity.ID{tn.nodes[1].id, r.id, tn.nodes[3].id}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		tuns := make([]*Tunnel, count)
		var wg sync.WaitGroup
		errs := make(chan error, count)
		const workers = 64
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < count; i += workers {
					tun, err := src.BuildTunnelPath(ctx, path)
					if err != nil {
						errs <- err
						return
					}
					tuns[i] = tun
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("building the idle tunnels: %v", err)
		}
		built := time.Now()
		if got := r.Status().Circuits; got != count {
			t.Fatalf("the relay holds %d circuits, want %d", got, count)
		}
		time.Sleep(relayIdle + 30*time.Second)
		repairs := src.Stat(EventTunnelsRepaired) + src.Stat(EventTunnelsRebuilt)
		closed := 0
		for _, tun := range tuns {
			if tun.isClosed() {
				closed++
			}
		}
		t.Logf("%d idle tunnels through one relay, %v after they were built: relay expired %d (%s), created %d circuits in all; initiator: %d repairs, %d tunnels closed, %d ended by a relay",
			count, time.Since(built).Round(time.Second), r.Stat(EventCircuitsExpired), EventCircuitsExpired,
			r.Stat(EventCircuits), repairs, closed, src.Stat(EventTunnelsEnded))
		if repairs != 0 {
			t.Errorf("%d repairs at the initiator after idle expiry, want 0", repairs)
		}
		if got := r.Stat(EventCircuitsExpired); got > uint64(count) {
			t.Errorf("the relay tore down %d idle circuits, want at most %d", got, count)
		}
		if got := r.Stat(EventCircuits); got != uint64(count) {
			t.Errorf("the relay created %d circuits in all, want %d (none after expiry)", got, count)
		}
		if closed != count {
			t.Errorf("%d of %d tunnels closed at the initiator, want all", closed, count)
		}
		for _, n := range tn.nodes[1:4] {
			if c := n.Status().Circuits; c != 0 {
				t.Errorf("%s still holds %d circuits", n.id.Short(), c)
			}
		}
	})
}

func TestIdleExpiryEndsTunnels(t *testing.T) { idleExpiry(t, 50) }

// The figure: 5,000 idle tunnels through one relay expire with at
// most 5,000 teardowns at the relay and no repair at the initiator.
func TestIdleExpiry5000Tunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 tunnels: about 20 s of CPU")
	}
	idleExpiry(t, 5000)
}

// A relay that stops cleanly (Node.Close: SIGTERM) tears its circuits
// down both ways before it goes: the hop before it reports TRUNCATED at
// once and the hop after it frees the circuit, instead of both waiting
// out the link timeout.
func TestCloseTearsCircuitsDownBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 8, 4, nil)
		src := tn.nodes[0]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := src.BuildTunnel(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
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
			return src.Stat(EventTunnelsRepaired)+src.Stat(EventTunnelsRebuilt) > 0
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

// Two nodes starting at once cross FRESH initiations; one delayed behind
// the handshake that brought the link up (or a retry of it) still says
// FRESH after circuits were built. It must not end them: within
// link.HandshakeTimeout of a FRESH handshake, a FRESH initiation under the
// same link key is a duplicate. Here b sends one more FRESH initiation
// right after a tunnel was built through it.
func TestDuplicateFreshInitiationKeepsCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := startNet(t, 4, 3, nil)
		a, b := tn.nodes[0], tn.nodes[1]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tun, err := a.BuildTunnelPath(ctx, []identity.ID{b.id})
		if err != nil {
			t.Fatal(err)
		}
		l := b.upLink(a.id)
		al := a.upLink(b.id)
		al.mu.Lock()
		since := time.Since(al.freshAt)
		al.mu.Unlock()
		if since >= link.HandshakeTimeout {
			t.Fatalf("the link came up %v ago: too long for this test", since)
		}
		l.mu.Lock()
		cur := l.cur
		l.cur = nil // so that b's next initiation says FRESH, as a crossed start-up one did
		l.mu.Unlock()
		b.initiate(l)
		l.mu.Lock()
		if l.cur == nil {
			l.cur = cur
		}
		l.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		if _, err := tun.Ping(ctx, 0); err != nil {
			t.Fatalf("the tunnel did not survive a duplicate FRESH initiation: %v", err)
		}
		if got := a.Stat(EventPeerRestarts); got != 0 {
			t.Errorf("%s = %d", EventPeerRestarts, got)
		}
	})
}
