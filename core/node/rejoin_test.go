package node

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// sendCreate has from send a raw CREATE carrying msg to peer on a fresh
// circuit ID, as a hostile relay would.
func sendCreate(t *testing.T, from *Node, peer identity.ID, msg []byte) {
	t.Helper()
	l := from.upLink(peer)
	if l == nil {
		t.Fatalf("%s has no link to %s", from.id.Short(), peer.Short())
	}
	from.mu.Lock()
	id := from.newCircIDLocked(peer)
	from.mu.Unlock()
	p := getBuf()
	pl := p.payload()
	clear(pl)
	pl[0] = kindCreate
	putCirc(pl, id)
	copy(pl[payloadHeader:], msg)
	from.sendPayload(l, p)
}

// Attack: relays that saw a rejoin or the circuit's original handshake try
// to take the exit's circuit (and the flow behind it) over. The old middle
// M, alive and hostile (the initiator repaired around it because it
// stopped relaying), replays the original CREATE it carried and forges a
// rejoin with a random point; the new middle N, which carried the rejoin,
// replays it. Each is at most an ordinary handshake making an unrelated
// circuit that no one can use: the exit's circuit stays where the
// initiator put it, with its flow, and the flow carries on.
func TestAttackRejoinReplayAndForge(t *testing.T) { synctest.Test(t, testAttackRejoinReplayAndForge) }

func testAttackRejoinReplayAndForge(t *testing.T) {
	en := startExitNet(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Record every relay's CREATEs to every exit candidate: the tunnel's
	// hops are known only once it is built.
	type sent struct {
		from, to identity.ID
		pl       []byte
	}
	var mu sync.Mutex
	var creates []sent
	for i, s := range en.taps {
		from := en.nodes[i].id
		s.mu.Lock()
		s.sending = func(to identity.ID, pl []byte) bool {
			if pl[0] == kindCreate {
				mu.Lock()
				creates = append(creates, sent{from, to, bytes.Clone(pl)})
				mu.Unlock()
			}
			return true
		}
		s.mu.Unlock()
	}
	tun, err := en.cli.buildExitTunnel(ctx, 3, "udp", flowDst, 0)
	if err != nil {
		t.Fatal(err)
	}
	hops := tun.hopIDs()
	exitID, m := hops[2], en.byID(hops[1])
	exit := en.byID(exitID)
	flow := en.upload(t, tun, exitID, "before-1")
	en.download(t, exitID, flow, "before-2")
	createsBy := func(from identity.ID) [][]byte { // its CREATEs to the exit
		mu.Lock()
		defer mu.Unlock()
		var out [][]byte
		for _, c := range creates {
			if c.from == from && c.to == exitID {
				out = append(out, c.pl[payloadHeader:payloadHeader+onion.ClientMsgLen])
			}
		}
		return out
	}
	orig := createsBy(m.id)
	if len(orig) != 1 {
		t.Fatalf("the middle sent %d CREATEs, want 1", len(orig))
	}

	tun.hopLost(1) // the liveness check found hop 2 silent; M is alive
	after := waitRepaired(t, tun, m.id)
	if after[2] != exitID {
		t.Fatal("the repair did not keep the exit")
	}
	nNode := en.byID(after[1])
	rejoin := createsBy(nNode.id)
	if len(rejoin) != 1 {
		t.Fatalf("the new middle sent %d CREATEs, want 1 (the rejoin)", len(rejoin))
	}
	c := exitCircuitOf(exit, flow)
	if c == nil {
		t.Fatal("the exit holds no circuit for the flow")
	}
	want, _ := c.prevSide()
	if want.peer != nNode.id {
		t.Fatalf("the exit's circuit comes from %s, want the new middle", want.peer.Short())
	}
	rejoined := exit.Stat(EventCircuitsRejoined)
	if rejoined == 0 {
		t.Fatalf("%s = 0 at the exit", EventCircuitsRejoined)
	}

	forged := bytes.Clone(orig[0])
	rand.Read(forged[64:])
	handled := func() uint64 { // every way a CREATE ends at the exit
		return exit.Stat(EventCircuits) + exit.Stat(DropExtendFailed) + exit.Stat(DropCreateRate) +
			exit.Stat(DropCreateLimit) + exit.Stat(EventCircuitsRejoined)
	}
	before := handled()
	if m.upLink(exitID) != nil {
		sendCreate(t, m, exitID, orig[0]) // the original handshake, replayed
		sendCreate(t, m, exitID, forged)  // a rejoin with a made-up point
	} else {
		t.Log("the old middle has no link to the exit any more; only the new middle's replay is tried")
		before += 2
	}
	sendCreate(t, nNode, exitID, rejoin[0]) // the rejoin, replayed by the hop that carried it
	waitFor(t, "the exit to handle the hostile CREATEs", 20*time.Second, func() bool {
		return handled()-before >= 3
	})
	if got, _ := c.prevSide(); got != want {
		t.Fatalf("a hostile CREATE moved the exit's circuit from %v to %v", want, got)
	}
	if got := exit.Stat(EventCircuitsRejoined); got != rejoined {
		t.Fatalf("%s went from %d to %d at the exit under the attacks", EventCircuitsRejoined, rejoined, got)
	}
	if got := en.upload(t, tun, exitID, "after-1"); got != flow {
		t.Fatalf("after the attacks the flow reached the exit's adapter as %d, want %d", got, flow)
	}
	en.download(t, exitID, flow, "after-2")
	if got := exitCircuitOf(exit, flow); got != c {
		t.Fatal("the flow is no longer on the circuit the initiator rejoined")
	}
}

// The new middle cannot tell the rejoin from an ordinary extension to the
// same exit by any field: the EXTEND it is delivered, the CREATE it sends
// and the CREATED it gets back have the sizes and layout of the ordinary
// ones the old middle handled when the tunnel was built (ID and onion key
// of the exit, then a point; a reply of a point and 32 bytes; zeros
// beyond), and nothing else passes between it and the exit.
func TestRejoinLooksLikeExtend(t *testing.T) { synctest.Test(t, testRejoinLooksLikeExtend) }

func testRejoinLooksLikeExtend(t *testing.T) {
	en := startExitNet(t, nil)
	// Every node records the CREATEs and CREATEDs it sends and the EXTENDs
	// delivered to it; the tunnel's hops are known only once it is built.
	type ev struct {
		from, to identity.ID
		kind     byte
		pl       []byte
	}
	var mu sync.Mutex
	var evs []ev
	var extends = map[identity.ID][][]byte{}
	for i, s := range en.taps {
		self := en.nodes[i].id
		s.mu.Lock()
		s.sending = func(to identity.ID, pl []byte) bool {
			if pl[0] == kindCreate || pl[0] == kindCreated {
				mu.Lock()
				evs = append(evs, ev{self, to, pl[0], bytes.Clone(pl)})
				mu.Unlock()
			}
			return true
		}
		s.delivered = func(_ identity.ID, _ uint32, cmd byte, data []byte) {
			if onion.Command(cmd) == onion.CmdExtend {
				mu.Lock()
				extends[self] = append(extends[self], bytes.Clone(data))
				mu.Unlock()
			}
		}
		s.mu.Unlock()
	}
	tun, hops, _ := en.buildFlow(t)
	tun.hopLost(1)
	after := waitRepaired(t, tun, hops[1])
	if after[2] != hops[2] {
		t.Fatal("the repair did not keep the exit")
	}
	exitID, oldMid, newMid := hops[2], hops[1], after[1]
	between := func(a, b identity.ID) (create, created [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			switch {
			case e.from == a && e.to == b && e.kind == kindCreate:
				create = append(create, e.pl)
			case e.from == b && e.to == a && e.kind == kindCreated:
				created = append(created, e.pl)
			}
		}
		return
	}
	oc, ocd := between(oldMid, exitID)
	nc, ncd := between(newMid, exitID)
	if len(oc) != 1 || len(ocd) != 1 || len(nc) != 1 || len(ncd) != 1 {
		t.Fatalf("CREATE/CREATED: old middle %d/%d, new middle %d/%d, want one of each", len(oc), len(ocd), len(nc), len(ncd))
	}
	mu.Lock()
	oe, ne := extends[oldMid], extends[newMid]
	mu.Unlock()
	if len(oe) != 1 || len(ne) != 1 {
		t.Fatalf("EXTENDs delivered: old middle %d, new middle %d, want 1 each", len(oe), len(ne))
	}
	if len(oe[0]) != len(ne[0]) || !bytes.Equal(oe[0][:32], ne[0][:32]) {
		t.Fatal("the rejoin's EXTEND differs in size or next hop from the ordinary one")
	}
	msgO, msgN := oc[0][payloadHeader:], nc[0][payloadHeader:]
	if !bytes.Equal(msgO[:64], msgN[:64]) {
		t.Fatal("the rejoin's CREATE names the exit or its onion key differently from the ordinary one")
	}
	if !bytes.Equal(oc[0][1:4], nc[0][1:4]) || !allZeroBytes(msgN[onion.ClientMsgLen:]) || !allZeroBytes(msgO[onion.ClientMsgLen:]) {
		t.Fatal("the CREATEs differ in reserved bytes or in what follows the message")
	}
	repO, repN := ocd[0][payloadHeader:], ncd[0][payloadHeader:]
	if !allZeroBytes(repN[onion.ServerMsgLen:]) || !allZeroBytes(repO[onion.ServerMsgLen:]) {
		t.Fatal("a CREATED carries something after the reply")
	}
	for name, p := range map[string][]byte{"rejoin X": msgN[64:96], "rejoin Y": repN[:32], "ordinary X": msgO[64:96], "ordinary Y": repO[:32]} {
		pk, err := ecdh.X25519().NewPublicKey(p)
		if err != nil {
			t.Fatalf("%s is not a public key: %v", name, err)
		}
		sk, _ := ecdh.X25519().GenerateKey(rand.Reader)
		if _, err := sk.ECDH(pk); err != nil || p[31]&0x80 != 0 {
			t.Fatalf("%s is not a point like an ephemeral key's: %v", name, err)
		}
	}
}

func allZeroBytes(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// An exit that loses a last-hop circuit's previous hop keeps the circuit
// and its flow for OrphanGrace, drops (and counts) the adapter's replies
// meanwhile, then tears it down and closes the flow. On main it tore the
// circuit and the flow down at once.
func TestOrphanKeptThenExpires(t *testing.T) { synctest.Test(t, testOrphanKeptThenExpires) }

func testOrphanKeptThenExpires(t *testing.T) {
	en := startExitNet(t, nil)
	_, hops, flow := en.buildFlow(t)
	exit := en.byID(hops[2])
	c := exitCircuitOf(exit, flow)
	if c == nil {
		t.Fatal("no exit circuit for the flow")
	}
	now := exit.opts.Clock.Now()
	total := func() int {
		exit.mu.Lock()
		defer exit.mu.Unlock()
		return exit.circs.total
	}
	held := total()
	exit.prevLost(c, destroyNone) // what a DESTROY from it or its link going down does
	if got := total(); got != held {
		// An orphan still counts under MaxCircuits (and on its dead link's
		// share): orphaning circuits cannot hold state past the limits.
		t.Fatalf("the exit counts %d circuits after the orphaning, %d before", got, held)
	}
	if slices.Contains(en.exits[hops[2]].ClosedFlows(), flow) || exitCircuitOf(exit, flow) != c {
		t.Fatal("the exit dropped the circuit and its flow when its previous hop went")
	}
	// (Other circuits at the exit may be orphans too: a tunnel that the
	// source closes leaves one until the lifecycle's FINISHED reason says
	// the tunnel ended.)
	if c.orphaned.Load() == 0 || exit.Stat(EventCircuitsOrphaned) == 0 {
		t.Fatalf("the circuit is not an orphan (%s = %d)", EventCircuitsOrphaned, exit.Stat(EventCircuitsOrphaned))
	}
	pkt, _ := ippkt.AppendUDP(nil, flowDst, netipAddrPort("100.64.0.2:5000"), []byte("orphan reply"))
	en.exits[hops[2]].Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
	waitFor(t, "the orphan's reply to be dropped and counted", 10*time.Second, func() bool {
		return exit.Stat(DropOrphanReply) >= 1
	})
	exit.expireOrphans(now.Add(exit.opts.OrphanGrace - time.Second))
	if exitCircuitOf(exit, flow) != c {
		t.Fatal("the orphan went before its grace ran out")
	}
	exit.expireOrphans(now.Add(exit.opts.OrphanGrace + time.Second))
	if exitCircuitOf(exit, flow) != nil || !slices.Contains(en.exits[hops[2]].ClosedFlows(), flow) {
		t.Fatal("the orphan and its flow outlived the grace")
	}
	if got := total(); got >= held {
		t.Fatalf("the expired orphan's slot was not released: %d circuits counted, %d before", got, held)
	}
	if exit.Stat(EventOrphansExpired) == 0 {
		t.Fatalf("%s = 0 after the orphan expired", EventOrphansExpired)
	}
	exit.mu.Lock()
	_, indexed := exit.rejoins[c.rejoinX]
	exit.mu.Unlock()
	if indexed {
		t.Error("the expired orphan is still in the rejoin index")
	}
}

// The exit learns first that the middle died (its circuit is an orphan);
// the initiator's rejoin then takes the orphan over: the same circuit and
// flow, no longer orphaned, its slot moved from the dead link to the new
// one.
func TestOrphanRejoined(t *testing.T) { synctest.Test(t, testOrphanRejoined) }

func testOrphanRejoined(t *testing.T) {
	en := startExitNet(t, nil)
	tun, hops, flow := en.buildFlow(t)
	exit := en.byID(hops[2])
	c := exitCircuitOf(exit, flow)
	kill(en.byID(hops[1]))
	exit.prevLost(c, destroyNone)
	tun.hopLost(1)
	after := waitRepaired(t, tun, hops[1])
	en.checkSameFlow(t, tun, hops, flow)
	if c.orphaned.Load() != 0 {
		t.Error("the rejoined circuit is still an orphan")
	}
	if got := exit.Stat(EventCircuitsRejoined); got == 0 {
		t.Errorf("%s = 0 at the exit", EventCircuitsRejoined)
	}
	if got := en.src.Stat(EventTunnelsRejoined); got == 0 { // spare tunnels through the dead middle may add to it
		t.Errorf("%s = 0 at the source", EventTunnelsRejoined)
	}
	// The circuit's slot moved with it: each link's count is what it holds.
	for _, peer := range []identity.ID{hops[1], after[1]} {
		held, _ := relayCircuitsFrom(exit, peer)
		exit.mu.Lock()
		open := 0
		if lc := exit.circs.perLink[peer]; lc != nil {
			open = lc.open
		}
		exit.mu.Unlock()
		if open != held {
			t.Errorf("the exit counts %d circuits on the link to %s, which holds %d", open, peer.Short(), held)
		}
	}
}

// A 4-hop tunnel whose third hop dies keeps its first hop and its exit:
// the first hop is asked to cut the circuit after it, one new hop is
// added, and the exit is rejoined through it.
func TestKeepExitRepairKeepsFirstHop(t *testing.T) { synctest.Test(t, testKeepExitRepairKeepsFirstHop) }

func testKeepExitRepairKeepsFirstHop(t *testing.T) {
	en := startExitNet(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tun, err := en.cli.buildExitTunnel(ctx, 4, "udp", flowDst, 0)
	if err != nil {
		t.Fatal(err)
	}
	hops := tun.hopIDs()
	flow := en.upload(t, tun, hops[3], "before-1")
	kill(en.byID(hops[2]))
	tun.hopLost(2) // blame hops 3 and 2, keep hop 1
	var after []identity.ID
	waitFor(t, "the 4-hop tunnel to be repaired", 60*time.Second, func() bool {
		after = tun.hopIDs()
		return !tun.isRepairing() && len(after) == 4 && !slices.Contains(after, hops[2])
	})
	if en.src.Stat(EventTunnelsRejoined) == 0 {
		t.Fatalf("no keep-exit repair: counters %v", en.src.stats.snapshot())
	}
	if after[0] != hops[0] || after[3] != hops[3] || after[1] == hops[1] {
		t.Fatalf("hops %v after the repair of %v: want hop 1 and the exit kept, hop 2 (blamed) replaced", short(after), short(hops))
	}
	if got := en.upload(t, tun, hops[3], "after-1"); got != flow {
		t.Fatalf("flow %d after the repair, want %d", got, flow)
	}
	en.download(t, hops[3], flow, "after-2")
}

func short(ids []identity.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.Short())
	}
	return out
}

// When the exit itself is lost there is nothing to rejoin: the tunnel is
// rebuilt on a fresh path (with a new exit) and works.
func TestKeepExitFallbackWhenExitLost(t *testing.T) {
	synctest.Test(t, testKeepExitFallbackWhenExitLost)
}

func testKeepExitFallbackWhenExitLost(t *testing.T) {
	en := startExitNet(t, nil)
	tun, hops, _ := en.buildFlow(t)
	kill(en.byID(hops[2]))
	tun.hopLost(2)
	var after []identity.ID
	waitFor(t, "the tunnel to be rebuilt", 60*time.Second, func() bool {
		after = tun.hopIDs()
		return !tun.isRepairing() && len(after) == 3 && !slices.Contains(after, hops[2])
	})
	if got := en.src.Stat(EventRejoinFallback); got == 0 {
		t.Fatalf("%s = 0: the lost exit was not a fallback", EventRejoinFallback)
	}
	if got := en.src.Stat(EventTunnelsRejoined); got != 0 {
		t.Fatalf("%s = %d with the exit dead", EventTunnelsRejoined, got)
	}
	en.upload(t, tun, after[2], "new exit")
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
