package redteam

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/plugins/discovery/static"
)

// Attacks on the circuit lifecycle (DECISIONS D24): the DESTROY(GONE)
// answer to a cell for an unknown circuit, and FRESH in the link
// handshake, each turned against the relay that honours it.

func init() {
	register(Attack{
		Name:     "gone-oracle",
		Finding:  "a mimic probes a relay with cells for circuit IDs it neither made nor was given, to learn which circuits the relay holds on other links, or to make it answer more than it is sent",
		Severity: "medium",
		Run:      runGoneOracle,
	})
	register(Attack{
		Name:     "fresh-abuse",
		Finding:  "a peer that restarts over and over (FRESH handshakes) makes a relay end circuits on other links, or initiators repair without end",
		Severity: "high",
		Run:      runFreshAbuse,
	})
}

// Documented bound on DESTROY(GONE) answers per link (D24): 64 at once,
// 32 a second.
const (
	goneBurst = 64
	goneRate  = 32
)

// relayTunnels builds count two-hop tunnels whose first hop is victim v,
// from initiators other than avoid, with a second hop other than avoid: v
// then holds a circuit on a link from each initiator (previous side) and
// on a link to each second hop (next side), none on avoid's link.
func relayTunnels(ctx context.Context, nt *Net, v *node.Node, avoid identity.ID, count int) ([]*node.Tunnel, error) {
	var peers []identity.ID
	for _, m := range v.Mimics() {
		if m.Up && m.ID != avoid && nt.Index(m.ID) >= 0 {
			peers = append(peers, m.ID)
		}
	}
	if len(peers) < 2 {
		return nil, fmt.Errorf("the victim has %d live mimic links besides the attacker's, want 2", len(peers))
	}
	var out []*node.Tunnel
	for i := 0; len(out) < count && i < 4*count; i++ {
		// Each pass over the initiators pairs them with other second hops.
		from := nt.Nodes[nt.Index(peers[i%len(peers)])]
		next := peers[(i/len(peers)+1+i)%len(peers)]
		if next == from.ID() {
			continue
		}
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t, err := from.BuildTunnelPath(bctx, []identity.ID{v.ID(), next})
		cancel()
		if err == nil {
			out = append(out, t)
		}
	}
	if len(out) < count {
		for _, t := range out {
			t.Close()
		}
		return nil, fmt.Errorf("built %d of %d tunnels through the victim", len(out), count)
	}
	return out, nil
}

// tunnelsAlive counts the tunnels that are open, kept their hops, and
// answer a ping from their last hop.
func tunnelsAlive(ctx context.Context, ts []*node.Tunnel, hops [][]identity.ID) int {
	alive := 0
	for i, t := range ts {
		select {
		case <-t.Done():
			continue
		default:
		}
		if !slices.Equal(hopIDs(t), hops[i]) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := t.Ping(pctx, len(hops[i])-1)
		cancel()
		if err == nil {
			alive++
		}
	}
	return alive
}

// answer is what came back on the attacker's link for one probe.
type answer struct {
	kind, reason byte
}

func (a answer) String() string {
	switch a.kind {
	case 0:
		return "none"
	case kindDestroy:
		return fmt.Sprintf("DESTROY(%d)", a.reason)
	}
	return fmt.Sprintf("kind %d", a.kind)
}

// runGoneOracle: hostile mimic A of relay V sends V, on their link, relay
// cells (forward and backward) and CREATEDs for circuit IDs it neither
// made nor was given: half of them IDs of circuits V holds on its other
// links (taken from the CREATEs those circuits were made with: what a
// colluder on the other link would know), half IDs V holds nowhere, in a
// random order, paced under the answer budget. Metric: how much better
// than chance A tells the two halves apart by V's answers (the largest
// difference, over every kind of answer, between the share of live and of
// dead IDs that drew it). Then a burst of cells for dead IDs: V must
// answer at most one per cell and within the documented budget (Failed
// otherwise), and the honest tunnels through V must still work.
func runGoneOracle(ctx context.Context, size Size) (Result, error) {
	probes, burst := 80, 300
	if size == Full {
		probes, burst = 800, 3000
	}
	const nodes = 8
	b := newBoard(nodes)
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		b.self[i] = o.Identity.ID()
		o.Tap = b.tap(i)
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	v := nt.Nodes[0]
	var a *node.Node
	for _, m := range v.Mimics() {
		if i := nt.Index(m.ID); m.Up && i >= 0 && linked(nt.Nodes[i], v.ID()) {
			a = nt.Nodes[i]
			break
		}
	}
	if a == nil {
		return Result{}, fmt.Errorf("the victim has no live mimic link")
	}
	tuns, err := relayTunnels(ctx, nt, v, a.ID(), 12)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, t := range tuns {
			t.Close()
		}
	}()
	var hops [][]identity.ID
	for _, t := range tuns {
		hops = append(hops, hopIDs(t))
	}
	// The circuits V holds on its other links: the IDs its peers chose
	// with their CREATEs (V takes forward cells on them) and the IDs V
	// chose toward its next hops (backward cells and CREATEDs).
	type live struct {
		id   uint32
		kind byte
	}
	var lives []live
	all, _ := b.createsSince(0)
	for _, c := range all {
		switch {
		case c.to == v.ID() && c.from != a.ID():
			lives = append(lives, live{c.circ, kindRelayFwd})
		case c.from == v.ID() && c.to != a.ID():
			lives = append(lives, live{c.circ, kindRelayBwd})
		}
	}
	if len(lives) == 0 {
		return Result{}, fmt.Errorf("the victim holds no circuit on other links")
	}
	isLive := map[uint32]bool{}
	for _, l := range lives {
		isLive[l.id] = true
	}

	// Every frame V sends A, by circuit ID.
	var mu sync.Mutex
	answers := map[uint32][]answer{}
	b.setWatch(func(self, from identity.ID, pl []byte) {
		if self != a.ID() || from != v.ID() || pl[0] == 0 || pl[0] == kindKeepalive {
			return
		}
		mu.Lock()
		id := binary.BigEndian.Uint32(pl[4:8])
		answers[id] = append(answers[id], answer{pl[0], pl[hdrLen]})
		mu.Unlock()
	})
	rng := mrand.New(mrand.NewPCG(11, 12))
	pl := make([]byte, link.PayloadSize)
	send := func(kind byte, id uint32) error {
		clear(pl)
		pl[0] = kind
		binary.BigEndian.PutUint32(pl[4:8], id)
		for i := hdrLen; i < len(pl); i += 8 {
			binary.BigEndian.PutUint64(pl[i:], rng.Uint64())
		}
		return a.SendLinkPayload(v.ID(), pl)
	}
	deadID := func() uint32 {
		for {
			id := rng.Uint32()
			if id&(1<<31-1) != 0 && !isLive[id] && answers[id] == nil {
				return id
			}
		}
	}
	// Probes in rounds: within a round each ID is probed once, so every
	// answer names its probe; live and dead alternate in a random order.
	kinds := []byte{kindRelayFwd, kindRelayBwd, kindCreated}
	type probe struct {
		id   uint32
		kind byte
		live bool
	}
	var done []probe
	got := map[bool]map[string]int{true: {}, false: {}}
	for len(done) < probes && ctx.Err() == nil {
		var round []probe
		for _, l := range lives {
			if l.kind == kindRelayBwd && rng.IntN(2) == 0 {
				l.kind = kindCreated // a CREATED for a CREATE V sent elsewhere
			}
			round = append(round, probe{l.id, l.kind, true})
			mu.Lock()
			round = append(round, probe{deadID(), kinds[rng.IntN(len(kinds))], false})
			mu.Unlock()
		}
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		if len(round) > probes-len(done) {
			round = round[:probes-len(done)]
		}
		mu.Lock()
		clear(answers)
		mu.Unlock()
		for _, p := range round {
			if err := send(p.kind, p.id); err != nil {
				return Result{}, err
			}
			time.Sleep(time.Second / (goneRate - 4)) // under the budget: the budget must not decide the answer
		}
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		for _, p := range round {
			var as []string
			for _, x := range answers[p.id] {
				as = append(as, x.String())
			}
			if len(as) == 0 {
				as = []string{"none"}
			}
			got[p.live][strings.Join(as, "+")]++
		}
		mu.Unlock()
		done = append(done, round...)
	}
	nLive, nDead := 0, 0
	for _, p := range done {
		if p.live {
			nLive++
		} else {
			nDead++
		}
	}
	if nLive == 0 || nDead == 0 {
		return Result{}, fmt.Errorf("probed %d live and %d dead IDs", nLive, nDead)
	}
	adv, which := 0.0, "none"
	seen := map[string]bool{}
	for _, m := range got {
		for k := range m {
			seen[k] = true
		}
	}
	for k := range seen {
		d := math.Abs(float64(got[true][k])/float64(nLive) - float64(got[false][k])/float64(nDead))
		if d > adv {
			adv, which = d, k
		}
	}

	// Amplification: a burst of cells for dead IDs, as fast as the link
	// takes them.
	mu.Lock()
	clear(answers)
	mu.Unlock()
	var ids []uint32
	start := time.Now()
	for i := 0; i < burst && ctx.Err() == nil; i++ {
		mu.Lock()
		id := deadID()
		mu.Unlock()
		ids = append(ids, id)
		if err := send(kinds[i%len(kinds)], id); err != nil {
			return Result{}, err
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // the victim keeps up: about answers, not load
		}
	}
	time.Sleep(300 * time.Millisecond)
	elapsed := time.Since(start)
	mu.Lock()
	replies, most := 0, 0
	for _, id := range ids {
		replies += len(answers[id])
		most = max(most, len(answers[id]))
	}
	mu.Unlock()
	alive := tunnelsAlive(ctx, tuns, hops)

	// Two-proportion test on the answer that differs most: the pooled
	// share, floored so that identical answers still allow one probe's
	// noise.
	q := float64(got[true][which]+got[false][which]) / float64(nLive+nDead)
	sd := math.Sqrt(max(q*(1-q), 1/float64(nLive+nDead)) * (1/float64(nLive) + 1/float64(nDead)))
	bound := goneBurst + goneRate*elapsed.Seconds()
	r := Result{
		Metric:    "advantage telling circuit IDs live on other links from dead ones",
		Attacker:  adv,
		Passive:   0,
		Tolerance: 4 * sd,
		Detail: fmt.Sprintf("%d probes (%d live IDs of circuits on the victim's other links, %d dead); answers live %v, dead %v (largest difference: %q); burst: %d cells in %v drew %d answers (%.2f per cell, at most %d per ID; bound %.0f); %d/%d honest tunnels through the victim alive; destroy_gone_sent %d, drop_gone_reply_rate %d",
			len(done), nLive, nDead, got[true], got[false], which, len(ids), elapsed.Round(time.Millisecond), replies,
			float64(replies)/float64(len(ids)), most, bound, alive, len(tuns), v.Stat(node.EventGoneSent), v.Stat(node.DropGoneReplyRate)),
	}
	switch {
	case most > 1:
		r.Failed = fmt.Sprintf("one cell drew %d answers", most)
	case float64(replies) > bound:
		r.Failed = fmt.Sprintf("%d answers to a burst in %v, over the budget of %.0f", replies, elapsed.Round(time.Millisecond), bound)
	case alive < len(tuns):
		r.Failed = fmt.Sprintf("only %d of %d honest tunnels through the victim survived the probes", alive, len(tuns))
	}
	return r, nil
}

// restartable is a network whose node opts can be started again: the
// options each node was started with.
type restartable struct {
	*Net
	opts []node.Options
}

// crashRestart stops node i as a crash would (its transport first, so it
// says nothing to anyone) and starts a new process of it at the same
// address: same identity, a new link key, no session with anyone, so its
// handshakes say FRESH.
func (r *restartable) crashRestart(ctx context.Context, i int) error {
	old := r.Nodes[i]
	r.opts[i].Transport.Close()
	old.Close()
	old.Wait()
	o := r.opts[i]
	o.Transport = r.mem.NewTransport()
	var peers []string
	for _, a := range r.Addrs {
		peers = append(peers, a.String())
	}
	disc, err := static.New(map[string]string{"peers": strings.Join(peers, ","), "interval": "300ms", "stretch": "false"}) // steady rounds: the harness counts on probes every round
	if err != nil {
		return err
	}
	o.Discovery = disc
	n, err := node.New(o)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	r.Nodes[i], r.opts[i] = n, o
	return nil
}

// runFreshAbuse: hostile peer A, a mimic of relay V, crashes and restarts
// over and over; each new process's handshakes say FRESH, so V (and A's
// other neighbours) end every route on A's link at once. Honest tunnels go
// through V on other links (control), and through A (each restart ends
// them; their initiators repair). Metric: control tunnels ended, i.e.
// circuits that did not use A's link; a passive peer ends none. Failed
// when the initiators repair more than the cap allows per tunnel that used
// A (repairs beyond the cap, or blame not keeping A out).
func runFreshAbuse(ctx context.Context, size Size) (Result, error) {
	restarts, control := 2, 8
	if size == Full {
		restarts, control = 6, 24
	}
	const nodes = 8
	rn := &restartable{opts: make([]node.Options, nodes)}
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		rn.opts[i] = *o
	}})
	if err != nil {
		return Result{}, err
	}
	rn.Net = nt
	defer nt.Close()
	v := nt.Nodes[0]
	ai := -1
	for _, m := range v.Mimics() {
		if i := nt.Index(m.ID); m.Up && i > 0 && linked(nt.Nodes[i], v.ID()) {
			ai = i
			break
		}
	}
	if ai < 0 {
		return Result{}, fmt.Errorf("the victim has no live mimic link")
	}
	aID := nt.Nodes[ai].ID()
	ctl, err := relayTunnels(ctx, nt, v, aID, control)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, t := range ctl {
			t.Close()
		}
	}()
	var ctlHops [][]identity.ID
	for _, t := range ctl {
		ctlHops = append(ctlHops, hopIDs(t))
	}
	// Tunnels on A's link (V then A, and A then V, from nodes linked to
	// the first hop), new ones before each restart, so that every FRESH
	// has routes to end beside the control tunnels'.
	var onA []*node.Tunnel
	defer func() {
		for _, t := range onA {
			t.Close()
		}
	}()
	buildOnA := func() {
		built := 0
		for _, path := range [][]identity.ID{{v.ID(), aID}, {aID, v.ID()}} {
			for _, n := range nt.Nodes {
				if n.ID() == aID || n.ID() == v.ID() || !linked(n, path[0]) || built >= 4 {
					continue
				}
				bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t, err := n.BuildTunnelPath(bctx, path)
				cancel()
				if err == nil {
					onA = append(onA, t)
					built++
				}
			}
		}
	}
	repairs := func() uint64 {
		var s uint64
		for i, n := range nt.Nodes {
			if i != ai {
				s += statSum(n, node.EventTunnelsRepaired, node.EventTunnelsRebuilt)
			}
		}
		return s
	}
	repairs0 := repairs()
	restarts0 := v.Stat(node.EventPeerRestarts)
	var backIn []time.Duration
	lastStart := time.Now()
	for k := 0; k < restarts && ctx.Err() == nil; k++ {
		buildOnA()
		// A descriptor's publication time has whole seconds, and peers
		// take a descriptor only if it is newer than the one they hold: a
		// process started in the same second as the one before it would
		// not be heard at all, which gains the attacker nothing.
		time.Sleep(time.Until(lastStart.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
		lastStart = time.Now()
		if err := rn.crashRestart(ctx, ai); err != nil {
			return Result{}, fmt.Errorf("restart %d: %w", k+1, err)
		}
		// Wait until the new process holds a session with V: V took its
		// FRESH handshake (and ended A's routes) then.
		at := time.Now()
		for !linked(nt.Nodes[ai], v.ID()) && time.Since(at) < 15*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		backIn = append(backIn, time.Since(at).Round(time.Millisecond))
	}
	time.Sleep(time.Second) // the repairs the last restart started
	for _, t := range onA {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.Ping(pctx, len(t.Hops())-1) // nothing to assert: a repair may still run
		cancel()
	}
	alive := tunnelsAlive(ctx, ctl, ctlHops)
	stillOnA := 0
	for _, t := range onA {
		if slices.Contains(hopIDs(t), aID) {
			stillOnA++
		}
	}
	repaired := repairs() - repairs0
	seen := v.Stat(node.EventPeerRestarts) - restarts0
	r := Result{
		Metric:   "circuits ended that did not use the restarting peer's link",
		Attacker: float64(len(ctl) - alive),
		Passive:  0,
		Detail: fmt.Sprintf("peer %s restarted %d times (the victim saw FRESH %d times; back in %v); %d/%d tunnels through the victim on other links alive; %d tunnels built on the peer's link, %d repairs at the initiators (bound %d per tunnel), %d still through the peer",
			aID.Short(), restarts, seen, backIn, alive, len(ctl), len(onA), repaired, repairCap+1, stillOnA),
	}
	if seen == 0 {
		r.Failed = "the victim never saw the peer's FRESH handshake: the attack did not run"
	} else if repaired > uint64(len(onA)*(repairCap+1)) {
		r.Failed = fmt.Sprintf("%d repairs for %d tunnels on the peer's link: more than %d each", repaired, len(onA), repairCap+1)
	}
	return r, nil
}

// repairCap is the documented repair cap (D21): three repairs in ten
// minutes, then a rebuild on a fresh path.
const repairCap = 3
