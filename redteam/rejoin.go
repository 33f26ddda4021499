package redteam

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// Attacks on keep-exit repair (DECISIONS D25): relays that saw a rejoin,
// or carried a circuit's handshake, try to take an exit's circuit (and the
// flow behind it) over, or to cut it, by sending the exit CREATEs shaped
// like rejoins.

const kindCreated = 2

func init() {
	register(Attack{
		Name:     "rejoin-hijack",
		Finding:  "a relay replays a rejoin it carried, or forges rejoins, to move an exit's circuit (and its flow) to itself or cut it",
		Severity: "critical",
		Run:      runRejoinHijack,
	})
	register(Attack{
		Name:     "orphan-hold",
		Finding:  "a previous hop makes an exit keep orphaned circuits and their flows, beyond what it could hold by keeping circuits open",
		Severity: "medium",
		Run:      runOrphanHold,
	})
}

// sentCreate is one CREATE a node sent: what the next hop of a circuit
// read, and what a hostile node that carried it can replay.
type sentCreate struct {
	from, to identity.ID
	circ     uint32
	msg      []byte // the client message: ID || B || X
}

// board is every node's Tap, switchable after start: it records the
// CREATEs each node sends, lets a scenario drop what a node receives, and
// lets it watch what reaches a node.
type board struct {
	self []identity.ID // node i's ID, filled by Tweak

	mu      sync.Mutex
	creates []sentCreate
	drop    func(self, from identity.ID, pl []byte) bool // true: node self drops pl
	watch   func(self, from identity.ID, pl []byte)
}

func newBoard(nodes int) *board { return &board{self: make([]identity.ID, nodes)} }

func (b *board) tap(i int) *node.Tap {
	return &node.Tap{
		Sending: func(to identity.ID, pl []byte) bool {
			if pl[0] == kindCreate {
				b.mu.Lock()
				b.creates = append(b.creates, sentCreate{b.self[i], to, binary.BigEndian.Uint32(pl[4:8]),
					bytes.Clone(pl[hdrLen : hdrLen+onion.ClientMsgLen])})
				b.mu.Unlock()
			}
			return true
		},
		Received: func(from identity.ID, pl []byte) bool {
			b.mu.Lock()
			drop, watch := b.drop, b.watch
			b.mu.Unlock()
			if watch != nil {
				watch(b.self[i], from, pl)
			}
			return drop == nil || !drop(b.self[i], from, pl)
		},
	}
}

// createsSince returns the CREATEs recorded from index k on, and the next
// index.
func (b *board) createsSince(k int) ([]sentCreate, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.creates[k:]), len(b.creates)
}

func (b *board) setDrop(f func(self, from identity.ID, pl []byte) bool) {
	b.mu.Lock()
	b.drop = f
	b.mu.Unlock()
}

func (b *board) setWatch(f func(self, from identity.ID, pl []byte)) {
	b.mu.Lock()
	b.watch = f
	b.mu.Unlock()
}

// exitWorld is a network whose node 0 is an honest initiator with a fake
// client adapter (it builds only the scenario's tunnels), and whose other
// nodes are exits with fake adapters keeping per-flow state (the flow
// handle, which the exit's NAT keys its mappings by). Each node chooses 5
// mimics, so that a walk through new hops to a given exit exists in 10
// nodes and a keep-exit repair does not fall back.
type exitWorld struct {
	*Net
	b      *board
	src    *node.Node
	client *adaptertest.Fake
	exits  map[identity.ID]*adaptertest.Fake
}

var worldDst = netip.MustParseAddrPort("93.184.216.34:443")

func startExitWorld(ctx context.Context, nodes int, tweak func(i int, o *node.Options)) (*exitWorld, error) {
	w := &exitWorld{b: newBoard(nodes), client: adaptertest.New(adapter.RoleClient), exits: map[identity.ID]*adaptertest.Fake{}}
	fakes := make([]*adaptertest.Fake, nodes)
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 5, Tweak: func(i int, o *node.Options) {
		w.b.self[i] = o.Identity.ID()
		o.Tap = w.b.tap(i)
		if i > 0 {
			o.Exit = true
		}
		if tweak != nil {
			tweak(i, o)
		}
	}, IP: func(i int) *ipservice.Options {
		if i == 0 {
			return &ipservice.Options{ClientAdapter: w.client, SpareTunnels: -1}
		}
		fakes[i] = adaptertest.New(adapter.RoleExit)
		return &ipservice.Options{ExitAdapter: fakes[i]}
	}})
	if err != nil {
		return nil, err
	}
	w.Net, w.src = nt, nt.Nodes[0]
	for i, n := range nt.Nodes {
		if i > 0 {
			w.exits[n.ID()] = fakes[i]
		}
	}
	return w, nil
}

func (w *exitWorld) node(id identity.ID) *node.Node {
	if i := w.Index(id); i >= 0 {
		return w.Nodes[i]
	}
	return nil
}

// upload sends one UDP packet carrying marker through tun and returns the
// flow handle its exit's adapter received it under; ok is false if the
// exit did not receive it within limit.
func (w *exitWorld) upload(ctx context.Context, tun *node.Tunnel, exit identity.ID, marker string, limit time.Duration) (uint64, bool) {
	pkt, err := ippkt.AppendUDP(nil, netip.MustParseAddrPort("100.64.0.2:5000"), worldDst, []byte(marker))
	if err != nil {
		return 0, false
	}
	fake := w.exits[exit]
	deadline := time.After(limit)
	resend := time.NewTicker(300 * time.Millisecond) // a datagram may meet a link being replaced
	defer resend.Stop()
	tun.SendData(pkt)
	for {
		select {
		case p := <-fake.Written():
			if bytes.Contains(p.Buf, []byte(marker)) {
				return p.Flow, true
			}
		case <-resend.C:
			tun.SendData(pkt)
		case <-deadline:
			return 0, false
		case <-ctx.Done():
			return 0, false
		}
	}
}

// download has exit's adapter answer on flow and reports whether the
// answer reached the initiator's client adapter within limit.
func (w *exitWorld) download(ctx context.Context, exit identity.ID, flow uint64, marker string, limit time.Duration) bool {
	pkt, err := ippkt.AppendUDP(nil, worldDst, netip.MustParseAddrPort("100.64.0.2:5000"), []byte(marker))
	if err != nil {
		return false
	}
	fake := w.exits[exit]
	fake.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
	deadline := time.After(limit)
	resend := time.NewTicker(300 * time.Millisecond)
	defer resend.Stop()
	for {
		select {
		case p := <-w.client.Written():
			if bytes.Contains(p.Buf, []byte(marker)) {
				return true
			}
		case <-resend.C:
			fake.Inject(adapter.Packet{Buf: pkt, N: len(pkt), Flow: flow})
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// flowTunnel is an honest tunnel carrying a flow, and the CREATEs that
// built it (by hop: the CREATE hop i received).
type flowTunnel struct {
	tun     *node.Tunnel
	hops    []identity.ID
	flow    uint64
	creates []sentCreate
}

func (f *flowTunnel) exit() identity.ID { return f.hops[len(f.hops)-1] }

// buildFlows builds count three-hop exit tunnels from the initiator, one at
// a time, and starts a flow through each, both ways.
func (w *exitWorld) buildFlows(ctx context.Context, count int) ([]*flowTunnel, error) {
	var out []*flowTunnel
	for i := 0; i < count; i++ {
		_, k := w.b.createsSince(0)
		bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		tun, err := w.IP[0].BuildExitTunnel(bctx, 3, "udp", worldDst)
		cancel()
		if err != nil {
			for _, f := range out {
				f.tun.Close()
			}
			return nil, fmt.Errorf("building tunnel %d: %w", i, err)
		}
		f := &flowTunnel{tun: tun, hops: hopIDs(tun)}
		made, _ := w.b.createsSince(k)
		for h, id := range f.hops {
			from := w.src.ID()
			if h > 0 {
				from = f.hops[h-1]
			}
			for _, c := range made {
				if c.from == from && c.to == id {
					f.creates = append(f.creates, c)
				}
			}
		}
		out = append(out, f)
		flow, ok := w.upload(ctx, tun, f.exit(), fmt.Sprintf("t%d-up-0", i), 10*time.Second)
		if !ok || !w.download(ctx, f.exit(), flow, fmt.Sprintf("t%d-down-0", i), 10*time.Second) {
			for _, f := range out {
				f.tun.Close()
			}
			return nil, fmt.Errorf("tunnel %d carries no flow before the attack", i)
		}
		f.flow = flow
		if len(f.creates) != len(f.hops) {
			return nil, fmt.Errorf("tunnel %d: saw %d of its %d CREATEs", i, len(f.creates), len(f.hops))
		}
	}
	return out, nil
}

func hopIDs(t *node.Tunnel) []identity.ID {
	var out []identity.ID
	for _, h := range t.Hops() {
		out = append(out, h.ID)
	}
	return out
}

// still reports whether f's flow carries on both ways on the exit circuit
// it started on (the exit's adapter sees it under the same handle).
func (w *exitWorld) still(ctx context.Context, f *flowTunnel, marker string) bool {
	if slices.Contains(w.exits[f.exit()].ClosedFlows(), f.flow) {
		return false
	}
	flow, ok := w.upload(ctx, f.tun, f.exit(), marker+"-up", 5*time.Second)
	return ok && flow == f.flow && w.download(ctx, f.exit(), f.flow, marker+"-down", 5*time.Second)
}

// sendCreate has from send to a raw CREATE carrying msg on a fresh
// circuit ID of its half of the link's ID space; it returns the ID.
func sendCreate(from *node.Node, to identity.ID, circ uint32, msg []byte) error {
	pl := make([]byte, link.PayloadSize)
	pl[0] = kindCreate
	binary.BigEndian.PutUint32(pl[4:8], circTop(from.ID(), to)|circ&(1<<31-1))
	copy(pl[hdrLen:], msg)
	return from.SendLinkPayload(to, pl)
}

// rejoinMsg is the rejoin message for exit with point x: ID || B || X.
func rejoinMsg(exit identity.ID, onionKey [32]byte, x []byte) []byte {
	msg := make([]byte, 0, onion.ClientMsgLen)
	msg = append(msg, exit[:]...)
	msg = append(msg, onionKey[:]...)
	return append(msg, x...)
}

// createsHandled is every way a CREATE ends at n.
func createsHandled(n *node.Node) uint64 {
	return statSum(n, node.EventCircuits, node.DropExtendFailed, node.DropCreateRate,
		node.DropCreateLimit, node.EventCircuitsRejoined)
}

// runRejoinHijack: honest tunnels carry flows through exits. One of them
// loses its middle relay M (M, hostile, stops passing its cells; the
// initiator's tunnel check finds it and the tunnel is repaired keeping its
// exit: a rejoin through a new predecessor N). Then the relays attack every
// exit that holds a live flow:
//
//   - N replays the rejoin it carried, several times, later;
//   - M replays the CREATE it carried when the tunnel was built;
//   - every node with a link to an exit sends it rejoin-shaped CREATEs
//     (the exit's ID and onion key) whose X is a fresh random point, random
//     bytes, the X of another circuit's CREATE it saw (to that exit, or to
//     another one), or the spent rejoin point;
//   - every relay that carried a live circuit's CREATE to its exit
//     replays it.
//
// Metric: circuits moved to a hostile relay (the exit's circuits_rejoined,
// and backward cells reaching a hostile circuit ID) plus flows cut (a flow
// that no longer carries on both ways under its handle). A passive relay
// moves or cuts nothing.
func runRejoinHijack(ctx context.Context, size Size) (Result, error) {
	tunnels, forged := 3, 6
	if size == Full {
		tunnels, forged = 10, 40
	}
	const nodes = 10
	w, err := startExitWorld(ctx, nodes, func(i int, o *node.Options) {
		o.TunnelQuiet, o.TunnelCheckTimeout = 300*time.Millisecond, 500*time.Millisecond
	})
	if err != nil {
		return Result{}, err
	}
	defer w.Close()
	flows, err := w.buildFlows(ctx, tunnels)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, f := range flows {
			f.tun.Close()
		}
	}()

	// The honest rejoin: M drops the forward cells of the first tunnel
	// whose repair keeps its exit (a small network may have no walk to the
	// exit; then the repair falls back, and the next tunnel is tried).
	var rejoined *flowTunnel
	var rejoin sentCreate
	var oldM identity.ID
	for ti, f := range flows[:min(3, len(flows))] {
		m, in := f.hops[1], f.creates[1] // M and the circuit it relays for f
		w.b.setDrop(func(self, from identity.ID, pl []byte) bool {
			return self == m && from == in.from && pl[0] == kindRelayFwd && binary.BigEndian.Uint32(pl[4:8]) == in.circ
		})
		_, k := w.b.createsSince(0)
		rejoins0 := w.src.Stat(node.EventTunnelsRejoined)
		pkt, _ := ippkt.AppendUDP(nil, netip.MustParseAddrPort("100.64.0.2:5000"), worldDst, []byte("into M"))
		f.tun.SendData(pkt) // the check finds M silent and repairs
		deadline := time.Now().Add(20 * time.Second)
		var after []identity.ID
		for time.Now().Before(deadline) && ctx.Err() == nil {
			after = hopIDs(f.tun)
			if len(after) == 3 && !slices.Contains(after, m) && w.src.Stat(node.EventTunnelsRejoined) > rejoins0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.b.setDrop(nil)
		if len(after) != 3 || after[2] != f.exit() || slices.Contains(after, m) {
			continue
		}
		made, _ := w.b.createsSince(k)
		for _, c := range made {
			if c.from == after[1] && c.to == f.exit() {
				rejoin = c
			}
		}
		if rejoin.msg == nil {
			return Result{}, fmt.Errorf("tunnel %d rejoined but its new predecessor's CREATE was not seen", ti)
		}
		f.hops = after
		if !w.still(ctx, f, fmt.Sprintf("t%d-rejoined", ti)) {
			return Result{}, fmt.Errorf("tunnel %d's flow did not carry on after its honest rejoin", ti)
		}
		rejoined, oldM = f, m
		break
	}
	if rejoined == nil {
		return Result{}, fmt.Errorf("no tunnel was repaired keeping its exit (tunnels_rejoin_fallback %d)", w.src.Stat(node.EventRejoinFallback))
	}
	// Further honest traffic before the replay ("later").
	if !w.still(ctx, rejoined, "later") {
		return Result{}, fmt.Errorf("the rejoined flow stopped before the attack")
	}

	// Every circuit ID a hostile CREATE opens, per (attacker, exit); a
	// backward cell from the exit on one of them is a circuit moved to it.
	type hkey struct {
		from, to identity.ID
		circ     uint32
	}
	var hmu sync.Mutex
	hostile := map[hkey]bool{}
	stolen := map[hkey]bool{} // hostile circuits a backward cell came on
	w.b.setWatch(func(self, from identity.ID, pl []byte) {
		if pl[0] != kindRelayBwd {
			return
		}
		hmu.Lock()
		if k := (hkey{self, from, binary.BigEndian.Uint32(pl[4:8])}); hostile[k] {
			stolen[k] = true
		}
		hmu.Unlock()
	})
	exitIDs := map[identity.ID]bool{}
	for _, f := range flows {
		exitIDs[f.exit()] = true
	}
	before := map[identity.ID]uint64{}
	moved0 := uint64(0)
	for id := range exitIDs {
		before[id] = createsHandled(w.node(id))
		moved0 += w.node(id).Stat(node.EventCircuitsRejoined)
	}
	all, _ := w.b.createsSince(0)
	var seenX [][]byte // every client point a relay saw in a CREATE
	for _, c := range all {
		seenX = append(seenX, c.msg[64:96])
	}
	sent := map[identity.ID]int{}
	kinds := map[string]int{}
	next := uint32(0x4000_0000)
	hsend := func(from *node.Node, to identity.ID, msg []byte) {
		next++
		if sendCreate(from, to, next, msg) == nil {
			hmu.Lock()
			hostile[hkey{from.ID(), to, circTop(from.ID(), to) | next&(1<<31-1)}] = true
			hmu.Unlock()
			sent[to]++
		}
		time.Sleep(time.Second / 50) // under the link's CREATE rate: every forgery gets an answer
	}
	// N replays the rejoin it carried, three times.
	if n := w.node(rejoin.from); n != nil {
		for range 3 {
			hsend(n, rejoin.to, rejoin.msg)
			kinds["rejoin replayed by its carrier"]++
		}
	}
	// M replays the original CREATE it sent to the exit, if it still has a
	// link to it.
	if mNode := w.node(oldM); mNode != nil && linked(mNode, rejoined.exit()) {
		for _, c := range all {
			if c.from == oldM && c.to == rejoined.exit() {
				hsend(mNode, c.to, c.msg)
				kinds["CREATE replayed by the old middle"]++
			}
		}
	}
	for id := range exitIDs {
		e := w.node(id)
		d, err := descriptor.Parse(e.Descriptor(), time.Now())
		if err != nil {
			return Result{}, err
		}
		var attackers []*node.Node
		for _, n := range w.Nodes[1:] {
			if n.ID() != id && linked(n, id) {
				attackers = append(attackers, n)
			}
		}
		for ai, a := range attackers[:min(2, len(attackers))] {
			for j := 0; j < forged; j++ {
				var x []byte
				switch j % 3 {
				case 0: // a fresh point, like any client's
					k, err := ecdh.X25519().GenerateKey(rand.Reader)
					if err != nil {
						return Result{}, err
					}
					x = k.PublicKey().Bytes()
					kinds["random point"]++
				case 1: // random bytes
					x = make([]byte, 32)
					rand.Read(x)
					kinds["random bytes"]++
				default: // a point it saw in some circuit's CREATE
					x = seenX[(j+ai*7)%len(seenX)]
					kinds["seen X"]++
				}
				hsend(a, id, rejoinMsg(id, d.OnionKey, x))
			}
			hsend(a, id, rejoinMsg(id, d.OnionKey, rejoin.msg[64:96])) // the spent point, from another relay
			kinds["spent point"]++
		}
	}
	// Every relay that carried a live circuit's CREATE to its exit replays it.
	for _, f := range flows {
		c := f.creates[len(f.creates)-1]
		if n := w.node(c.from); n != nil && linked(n, c.to) {
			hsend(n, c.to, c.msg)
			kinds["replayed CREATE"]++
		}
	}
	// Wait until each exit has handled every hostile CREATE.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for id := range exitIDs {
			if createsHandled(w.node(id))-before[id] < uint64(sent[id]) {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	handled, total := 0, 0
	moved := uint64(0)
	for id := range exitIDs {
		handled += int(createsHandled(w.node(id)) - before[id])
		total += sent[id]
		moved += w.node(id).Stat(node.EventCircuitsRejoined)
	}
	moved -= moved0
	cut := 0
	for i, f := range flows {
		if !w.still(ctx, f, fmt.Sprintf("t%d-after", i)) {
			cut++
		}
	}
	hmu.Lock()
	st := len(stolen)
	hmu.Unlock()
	detail := fmt.Sprintf("%d tunnels with flows through %d exits; tunnel rejoined through %s (old middle %s); %d hostile CREATEs (%v), %d handled by the exits; exits' circuits_rejoined +%d, backward cells on hostile circuits %d, flows cut %d",
		len(flows), len(exitIDs), rejoin.from.Short(), oldM.Short(), total, kinds, handled, moved, st, cut)
	r := Result{
		Metric:   "exit circuit moves to a hostile relay, plus flows cut",
		Attacker: float64(max(moved, uint64(st)) + uint64(cut)),
		Passive:  0,
		Detail:   detail,
	}
	if handled < total {
		r.Failed = fmt.Sprintf("the exits handled only %d of %d hostile CREATEs: the attack was not measured", handled, total)
	}
	return r, nil
}

// runOrphanHold: hostile node A, a mimic of exit E, is E's previous hop on
// circuits that carry flows (its own one-hop tunnels: E cannot tell an
// initiator from a relay). Passive: A opens as many such circuits as E
// lets one link hold and keeps them open. Attack: A opens as many, each
// with a flow, then makes E lose its side of each (a DESTROY saying
// nothing, as when a hop dies), so that E keeps them as orphans with their
// flows for the grace period, and opens as many again. Metric: the most
// circuits with flows E holds for A's link at once. Failed when an orphan
// and its flow outlive the grace period by more than a second.
func runOrphanHold(ctx context.Context, size Size) (Result, error) {
	limit, grace := 12, 2*time.Second
	if size == Full {
		limit, grace = 64, 10*time.Second
	}
	const nodes = 6
	w, err := startExitWorld(ctx, nodes, func(i int, o *node.Options) {
		o.MaxCircuitsPerLink, o.OrphanGrace = limit, grace
	})
	if err != nil {
		return Result{}, err
	}
	defer w.Close()
	// E: the first exit that has a link from another exit (A); A is
	// not the initiator, so the scenario's circuits are A's alone.
	var e, a *node.Node
	for _, x := range w.Nodes[1:] {
		for _, y := range w.Nodes[1:] {
			if e == nil && x != y && linked(y, x.ID()) {
				e, a = x, y
			}
		}
	}
	if e == nil {
		return Result{}, fmt.Errorf("no exit has a link from another")
	}
	var tuns []*node.Tunnel
	defer func() {
		for _, t := range tuns {
			t.Close()
		}
	}()
	// open builds up to want one-hop tunnels A -> E, each with a flow,
	// trying until until (at least want times), and returns those built
	// (the rest were refused at E's limit).
	open := func(tag string, want int, until time.Time, each func()) ([]*node.Tunnel, []uint64, error) {
		var out []*node.Tunnel
		var flows []uint64
		for i := 0; len(out) < want && (i < want || time.Now().Before(until)) && ctx.Err() == nil; i++ {
			bctx, cancel := context.WithTimeout(ctx, time.Second)
			t, err := a.BuildTunnelPath(bctx, []identity.ID{e.ID()})
			cancel()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			tuns = append(tuns, t)
			flow, ok := w.upload(ctx, t, e.ID(), fmt.Sprintf("%s-%d", tag, i), 5*time.Second)
			if !ok {
				return nil, nil, fmt.Errorf("%s: circuit %d carries no flow", tag, i)
			}
			out, flows = append(out, t), append(flows, flow)
			if each != nil {
				each()
			}
		}
		return out, flows, nil
	}
	// Passive: hold what E lets one link hold, then end it cleanly.
	held, _, err := open("passive", limit+limit/2, time.Time{}, nil)
	if err != nil {
		return Result{}, err
	}
	passive := len(held)
	for _, t := range held {
		t.Close()
	}
	time.Sleep(200 * time.Millisecond) // E takes the FINISHEDs
	// Attack: as many again, then orphan them.
	_, k := w.b.createsSince(0)
	first, flows, err := open("orphan", limit, time.Time{}, nil)
	if err != nil {
		return Result{}, err
	}
	made, _ := w.b.createsSince(k)
	orphaned0, expired0 := e.Stat(node.EventCircuitsOrphaned), e.Stat(node.EventOrphansExpired)
	pl := make([]byte, link.PayloadSize)
	for _, c := range made {
		if c.from == a.ID() && c.to == e.ID() {
			clear(pl)
			pl[0] = kindDestroy
			binary.BigEndian.PutUint32(pl[4:8], c.circ)
			if err := a.SendLinkPayload(e.ID(), pl); err != nil {
				return Result{}, err
			}
		}
	}
	orphanedAt := time.Now()
	for e.Stat(node.EventCircuitsOrphaned)-orphaned0 < uint64(len(first)) && time.Since(orphanedAt) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	orphans := int(e.Stat(node.EventCircuitsOrphaned) - orphaned0)
	// When the orphans expire, watched beside the new opens.
	expiredAt := make(chan time.Duration, 1)
	go func() {
		for e.Stat(node.EventOrphansExpired)-expired0 < uint64(orphans) && time.Since(orphanedAt) < grace+5*time.Second && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		expiredAt <- time.Since(orphanedAt)
	}()
	// Held at once: each new circuit, beside the orphans not yet expired
	// (counted just after the circuit's flow started).
	peak, opened := orphans, 0
	more, _, err := open("more", limit, orphanedAt.Add(grace+time.Second), func() {
		opened++
		left := orphans - int(e.Stat(node.EventOrphansExpired)-expired0)
		peak = max(peak, opened+left)
	})
	if err != nil {
		return Result{}, err
	}
	expiredIn := <-expiredAt
	expired := int(e.Stat(node.EventOrphansExpired) - expired0)
	closed := 0
	for _, f := range flows {
		if slices.Contains(w.exits[e.ID()].ClosedFlows(), f) {
			closed++
		}
	}
	r := Result{
		Metric:   "circuits with flows an exit holds for one link at once",
		Attacker: float64(peak),
		Passive:  float64(passive),
		Detail: fmt.Sprintf("exit %s, previous hop %s, circuit limit per link %d, grace %v; kept open: %d; orphaned %d of %d, then opened %d more (most at once beside orphans %d); %d orphans expired %v after orphaning, %d of their flows closed",
			e.ID().Short(), a.ID().Short(), limit, grace, passive, orphans, len(first), len(more), peak, expired, expiredIn.Round(10*time.Millisecond), closed),
	}
	switch {
	case orphans == 0:
		r.Failed = "no circuit was orphaned: the attack did not run"
	case expired < orphans || closed < orphans || expiredIn > grace+time.Second:
		r.Failed = fmt.Sprintf("%d of %d orphans expired and %d flows closed within %v (grace %v)", expired, orphans, closed, expiredIn.Round(10*time.Millisecond), grace)
	}
	return r, nil
}
