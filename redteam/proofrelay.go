package redteam

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/plugins/discovery/static"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Relayed reachability proofs (issue 10, PROTOCOL.md §5 and §9).
//
// Both attacks here answer a victim's probe of an address the attacker
// holds with a proof of another node's, P's: the attacker forwards the
// victim's probe to P (as it is, then inside a probe of its own), takes
// the signature P answers with, puts it on a descriptor P once signed that
// lists the attacker's address, and sends that proof to the victim from
// the attacker's address. The victim probed a bare address (its discovery
// lists it), so it takes whichever node proves itself there.
//
// In version 1 this worked: P answered any probe toward its source, and
// its signature covered only nonce || P's ID, so it fitted any descriptor
// P ever signed; the view replaced a descriptor by one as old or older
// proven at another address. core/node's TestAttackRelayedProofMovesPeer
// and TestAttackRollbackOlderDescriptor were committed failing on that
// code (5a1d9ca, "all fail on the unchanged code"): these attacks would
// have measured 1 on both metrics there. In version 2 P answers only a
// probe whose carried descriptor lists its source (the victim's does not:
// drop_probe_reflect at P), a proof is signed over the prober's ID and the
// exact descriptor carried (the one the attacker gets is made out to the
// attacker, over P's current descriptor: drop_proof_invalid at the
// victim), and a proven older descriptor is refused anyway
// (drop_descriptor_older).
//
// After the tries, a control answers one more victim probe with a valid
// proof of the attacker's own identity at its address, and the attack
// errors unless the victim admits it: a zero then comes from the checks
// on the proof, not from a harness whose frames never reach admission.

func init() {
	register(Attack{
		Name:     "proof-relay",
		Finding:  "reachability proofs can be relayed: a victim's probe relayed to P and P's proof relayed back make the victim believe P lives at the attacker's address",
		Severity: "high",
		Run:      runProofRelay,
	})
	register(Attack{
		Name:     "rollback",
		Finding:  "views roll back: an attacker presents P's older, validly signed descriptor and the victim goes back to P's old keys and address",
		Severity: "high",
		Run:      runRollback,
	})
}

// rawFrame is one datagram a sock received.
type rawFrame struct {
	from netip.AddrPort
	data []byte
}

// sock is an attacker's socket on the in-memory network: it keeps every
// probe and proof it receives, in order, for the attack to pick from.
type sock struct {
	tr   transport.Transport
	addr netip.AddrPort

	mu     sync.Mutex
	frames []rawFrame
	wake   chan struct{}
}

// openSock listens at addr (Net.Close closes it).
func openSock(nt *Net, addr netip.AddrPort) (*sock, error) {
	tr, err := nt.Raw(addr)
	if err != nil {
		return nil, err
	}
	s := &sock{tr: tr, addr: addr, wake: make(chan struct{}, 1)}
	go s.pump()
	return s, nil
}

func (s *sock) pump() {
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, link.FrameSize+64)
	}
	for {
		for i := range pkts {
			pkts[i].Buf = pkts[i].Buf[:cap(pkts[i].Buf)]
		}
		k, err := s.tr.ReadBatch(pkts)
		if err != nil {
			return
		}
		s.mu.Lock()
		for _, p := range pkts[:k] {
			// Only probes and proofs are kept: link traffic is not ours
			// to read, and keeping nothing else bounds the memory.
			if p.N == link.FrameSize && (p.Buf[0] == link.TypeProbe || p.Buf[0] == link.TypeProof) {
				s.frames = append(s.frames, rawFrame{from: p.Addr, data: append([]byte(nil), p.Buf[:p.N]...)})
			}
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// next returns the first frame of type typ at or after index start that
// match accepts (nil: any), and its index, waiting up to limit.
func (s *sock) next(ctx context.Context, typ byte, start int, limit time.Duration, match func(from netip.AddrPort) bool) (rawFrame, int, bool) {
	deadline := time.Now().Add(limit)
	for {
		s.mu.Lock()
		for i := start; i < len(s.frames); i++ {
			f := s.frames[i]
			if f.data[0] == typ && (match == nil || match(f.from)) {
				s.mu.Unlock()
				return f, i, true
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return rawFrame{}, 0, false
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// count is how many probes and proofs arrived so far.
func (s *sock) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

func (s *sock) send(dst netip.AddrPort, frame []byte) error {
	return s.tr.WriteBatch([]transport.Packet{{Addr: dst, Buf: frame, N: len(frame)}})
}

// forgedProof builds a type-5 frame by hand (PROTOCOL.md §5 layout), as an
// attacker who moves a signature onto another descriptor does: nonce ||
// len || desc || sig, header type 5 and the rest zero.
func forgedProof(nonce [32]byte, desc, sig []byte) []byte {
	f := make([]byte, link.FrameSize)
	f[0] = link.TypeProof
	b := f[link.HeaderSize:link.HeaderSize]
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(desc)))
	b = append(b, desc...)
	_ = append(b, sig...)
	return f
}

// waitStat waits up to limit for any of n's counters to move past their
// sum at the call's start (before, from statSum); it reports whether one did.
func waitStat(ctx context.Context, n *node.Node, before uint64, limit time.Duration, names ...string) bool {
	deadline := time.Now().Add(limit)
	for statSum(n, names...) == before {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func statSum(n *node.Node, names ...string) uint64 {
	var s uint64
	for _, name := range names {
		s += n.Stat(name)
	}
	return s
}

// proofHandled are the counters one of which moves when a node handles a
// proof that answers one of its probes (or claims to).
var proofHandled = []string{node.EventAdmitted, node.DropProofInvalid, node.DropDescriptorInvalid, node.DropDescriptorOlder, node.DropDescriptorLifetime}

// probeRefused are the counters one of which moves when a node refuses a
// probe without answering it.
var probeRefused = []string{node.DropProbeReflect, node.DropProbeRateLimit, node.DropDescriptorInvalid, node.DropDescriptorLifetime, node.DropMalformedFrame}

// relayPlan is one relayed-proof campaign.
type relayPlan struct {
	atk      *sock                   // the attacker's address, which victims probe
	p        *node.Node              // whose proofs are relayed
	present  []byte                  // P's descriptor, listing atk.addr, put on the proof sent to the victim
	victims  []*node.Node            // nodes whose probes of atk.addr are answered
	tries    int                     // victim probes to answer
	wait     time.Duration           // bound on the wait for each victim probe
	eligible func(v *node.Node) bool // a victim's probe counts only if this holds (nil: always)
	// gained says whether the victim's view of P after the forged proof
	// shows the attack worked, given the entry before it.
	gained func(before, after *view.Peer, ok bool) bool
}

// relayTally is what a campaign saw.
type relayTally struct {
	tries, gained, dropped int // victim probes answered; views the attack changed; victims that lost P
	answeredAsIs           int // relayed victim probes P answered (version 1 did)
	answeredOwn            int // relayed probes carrying the attacker's own descriptor P answered
	noProof                int // tries with no signature of P's to move
	handled                int // forged proofs the victim was seen to handle
	victimDelta            map[string]uint64
	pDelta                 map[string]uint64
}

// runRelay answers victims' probes of plan.atk.addr with P's relayed
// signature on plan.present, one probe at a time.
func runRelay(ctx context.Context, nt *Net, plan relayPlan) (relayTally, error) {
	var t relayTally
	isVictim := map[netip.AddrPort]*node.Node{}
	var before []map[string]uint64
	for _, v := range plan.victims {
		isVictim[v.Addr()] = v
		before = append(before, v.Stats())
	}
	pBefore := plan.p.Stats()
	cursor := 0
	for t.tries < plan.tries {
		probe, at, ok := plan.atk.next(ctx, link.TypeProbe, cursor, plan.wait, func(from netip.AddrPort) bool {
			v := isVictim[from]
			return v != nil && (plan.eligible == nil || plan.eligible(v))
		})
		if !ok {
			if ctx.Err() != nil {
				return t, ctx.Err()
			}
			break // no victim probed us within the bound: report what was tried
		}
		cursor = at + 1
		v := isVictim[probe.from]
		nonce, victimDesc, err := link.DecodeProbe(probe.data)
		if err != nil {
			return t, fmt.Errorf("decoding the victim's probe: %w", err)
		}
		sig, how, err := relayToP(ctx, nt, plan.p, t.tries, nonce, victimDesc)
		if err != nil {
			return t, err
		}
		switch how {
		case "as-is":
			t.answeredAsIs++ // the attacker's own probe is not sent then
		case "own":
			t.answeredOwn++
		default:
			t.noProof++
			// Nothing of P's to move; answer with a signature of the
			// attacker's own making so the victim's probe is used up and
			// the next comes soon.
			sig = make([]byte, 64)
		}
		held, _ := v.View().Get(plan.p.ID())
		h0 := statSum(v, proofHandled...)
		if err := plan.atk.send(v.Addr(), forgedProof(nonce, plan.present, sig)); err != nil {
			return t, err
		}
		t.tries++
		if waitStat(ctx, v, h0, 3*time.Second, proofHandled...) {
			t.handled++
		}
		got, ok := v.View().Get(plan.p.ID())
		if !ok {
			t.dropped++
		}
		if plan.gained(held, got, ok) {
			t.gained++
		}
	}
	if t.tries > 0 {
		if err := relayControl(ctx, plan, isVictim, cursor); err != nil {
			return t, err
		}
	}
	t.victimDelta = map[string]uint64{}
	for i, v := range plan.victims {
		for k, d := range statsDelta(before[i], v.Stats()) {
			t.victimDelta[k] += d
		}
	}
	t.pDelta = statsDelta(pBefore, plan.p.Stats())
	return t, nil
}

// relayControl answers one more victim probe with a valid proof of the
// attacker's own (a fresh identity whose descriptor lists the attacker's
// address) and checks that the victim admits it there: the forged proofs'
// layout, address and timing reach the victim's admission, so a zero
// comes from the checks on the proof, not from the harness. The victim
// admits the attacker's own identity, as it would any node at that
// address: after the tries, so it does not change what they measured.
func relayControl(ctx context.Context, plan relayPlan, isVictim map[netip.AddrPort]*node.Node, cursor int) error {
	probe, _, ok := plan.atk.next(ctx, link.TypeProbe, cursor, plan.wait, func(from netip.AddrPort) bool { return isVictim[from] != nil })
	if !ok {
		return fmt.Errorf("control: no victim probed the attacker's address again within %v", plan.wait)
	}
	v := isVictim[probe.from]
	nonce, _, err := link.DecodeProbe(probe.data)
	if err != nil {
		return err
	}
	id, mine, err := attackerDescriptor([]netip.AddrPort{plan.atk.addr}, time.Hour)
	if err != nil {
		return err
	}
	proof, err := link.EncodeProof(nonce, v.ID(), mine, id)
	if err != nil {
		return err
	}
	if err := plan.atk.send(v.Addr(), proof); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if pe, ok := v.View().Get(id.ID()); ok && pe.Addr == plan.atk.addr {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("control: the victim did not admit a valid proof from the attacker's address within 3 s (stats %v): the harness, not the protocol, would explain a zero",
				deltaString(v.Stats(), proofHandled...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// relayToP forwards a victim's probe (nonce, victim's descriptor) to P
// from a relay address of the attacker's (one IPv4 address per try, so
// that P's per-source probe budget does not decide the outcome): first as it is, then carrying the attacker's own descriptor
// listing the relay address. It returns the signature P answered with and
// which probe drew it ("as-is", "own", or "" when P answered neither).
func relayToP(ctx context.Context, nt *Net, p *node.Node, try int, nonce [32]byte, victimDesc []byte) ([]byte, string, error) {
	relayAddr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 210, byte(try / 250), byte(try%250 + 1)}), 7700)
	r, err := openSock(nt, relayAddr)
	if err != nil {
		return nil, "", err
	}
	defer r.tr.Close()
	_, mine, err := attackerDescriptor([]netip.AddrPort{relayAddr}, time.Hour)
	if err != nil {
		return nil, "", err
	}
	for _, c := range []struct {
		how     string
		carried []byte
	}{{"as-is", victimDesc}, {"own", mine}} {
		frame, err := link.EncodeProbe(nonce, c.carried)
		if err != nil {
			return nil, "", err
		}
		start, refused := r.count(), statSum(p, probeRefused...)
		if err := r.send(p.Addr(), frame); err != nil {
			return nil, "", err
		}
		// Wait for P's proof, or for P to count the probe refused.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if proof, _, ok := r.next(ctx, link.TypeProof, start, 10*time.Millisecond, func(from netip.AddrPort) bool { return from == p.Addr() }); ok {
				_, _, sig, err := link.DecodeProof(proof.data)
				if err != nil {
					return nil, "", fmt.Errorf("decoding P's proof: %w", err)
				}
				return sig, c.how, nil
			}
			if statSum(p, probeRefused...) != refused {
				break
			}
		}
	}
	return nil, "", ctx.Err()
}

// statsDelta lists the counters that moved, frame and padding counts left
// out.
func statsDelta(before, after map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 && k != node.EventFramesIn && k != node.EventFramesOut && k != node.EventPaddingIn && k != node.EventPaddingOut {
			out[k] = d
		}
	}
	return out
}

// deltaString prints the named counters of a delta (those that moved).
func deltaString(d map[string]uint64, names ...string) string {
	var parts []string
	for _, k := range names {
		if d[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, d[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// relayDetail describes a campaign.
func relayDetail(t relayTally) string {
	return fmt.Sprintf("%d victim probes answered with P's relayed signature; P answered %d relayed victim probes as they were and %d carrying the attacker's descriptor; "+
		"victims handled %d forged proofs (victims, control included: %s; P: %s); victims that lost P: %d; control: a valid proof of the attacker's own from its address was admitted",
		t.tries, t.answeredAsIs, t.answeredOwn, t.handled,
		deltaString(t.victimDelta, node.EventAdmitted, node.DropProofInvalid, node.DropDescriptorOlder, node.DropDescriptorInvalid),
		deltaString(t.pDelta, node.DropProbeReflect, node.DropProbeRateLimit, node.EventProofsSigned), t.dropped)
}

// sizes of the relay attacks.
func relayTries(size Size) (nodes, tries int) {
	if size == Full {
		return 8, 40
	}
	return 5, 8
}

// staticWith is a static discovery backend proposing the network's node
// addresses and extra, every 300 ms (as StartNet's does).
func staticWith(nodes int, extra ...netip.AddrPort) (*static.Static, error) {
	var peers []string
	for i := 0; i < nodes; i++ {
		peers = append(peers, NodeAddr(i).String())
	}
	for _, a := range extra {
		peers = append(peers, a.String())
	}
	d, err := static.New(map[string]string{"peers": strings.Join(peers, ","), "interval": "300ms", "stretch": "false"}) // steady rounds: the harness counts on probes every round
	if err != nil {
		return nil, err
	}
	return d.(*static.Static), nil
}

// runProofRelay: P = node 1 stays where it is; every other node's
// discovery also lists the attacker's address A (a bare address, as a
// bootstrap list or an old gossip entry would), so each probes A. The
// attacker holds a descriptor of P's as new as the one the victims hold,
// with P's keys, listing A: it stands for one P signed while it held A
// (multi-homed, or before it moved), which a real attacker would have
// to find; the harness grants it, a stronger attacker. Each victim probe
// of A is relayed to P and P's signature put on that descriptor. Since it
// is as new as the one held and proven at another address, a proof that
// verified would move P to A (§9): only the proof's binding (§5) stands
// in the way. Metric: share of answered victim probes after which the
// victim's view had P at A. A passive participant at A is never taken for
// P: 0.
func runProofRelay(ctx context.Context, size Size) (Result, error) {
	nodes, tries := relayTries(size)
	const pIdx = 1
	atkAddr := netip.MustParseAddrPort("127.200.0.1:7700")
	var pID *identity.Identity
	var tweakErr error
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 2, Tweak: func(i int, o *node.Options) {
		if i == pIdx {
			pID = o.Identity
			return
		}
		d, err := staticWith(nodes, atkAddr)
		if err != nil {
			tweakErr = err
			return
		}
		o.Discovery = d
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	if tweakErr != nil {
		return Result{}, tweakErr
	}
	p := nt.Nodes[pIdx]
	cur, err := descriptor.Parse(p.Descriptor(), time.Now())
	if err != nil {
		return Result{}, err
	}
	d := &descriptor.Descriptor{LinkKey: cur.LinkKey, Addrs: []descriptor.Addr{{Transport: "mem", AddrPort: atkAddr}},
		Exit: cur.Exit, ExitPolicy: cur.ExitPolicy, Published: cur.Published, Expires: cur.Expires}
	if _, err := rand.Read(d.OnionKey[:]); err != nil {
		return Result{}, err
	}
	present, err := d.Sign(pID)
	if err != nil {
		return Result{}, err
	}
	atk, err := openSock(nt, atkAddr)
	if err != nil {
		return Result{}, err
	}
	var victims []*node.Node
	held := map[identity.ID]netip.AddrPort{}
	for i, v := range nt.Nodes {
		if i == pIdx {
			continue
		}
		victims = append(victims, v)
		pe, ok := v.View().Get(p.ID())
		if !ok {
			return Result{}, fmt.Errorf("victim %s does not know P", v.ID().Short())
		}
		held[v.ID()] = pe.Addr
	}
	t, err := runRelay(ctx, nt, relayPlan{
		atk: atk, p: p, present: present, victims: victims, tries: tries,
		// Victims re-probe an unanswered address after 5 s.
		wait: 8 * time.Second,
		gained: func(before, after *view.Peer, ok bool) bool {
			return ok && after.Addr == atkAddr
		},
	})
	if err != nil {
		return Result{}, err
	}
	if t.tries == 0 {
		return Result{}, fmt.Errorf("no victim probed the attacker's address %v within 8 s", atkAddr)
	}
	moved := 0
	for _, v := range victims {
		if pe, ok := v.View().Get(p.ID()); ok && pe.Addr != held[v.ID()] {
			moved++
		}
	}
	return Result{
		Metric:   "share of answered victim probes after which the victim's view moved P to the attacker's address",
		Attacker: float64(t.gained) / float64(t.tries),
		Passive:  0,
		Detail:   fmt.Sprintf("%s; victims whose view holds P elsewhere than before at the end: %d of %d", relayDetail(t), moved, len(victims)),
	}, nil
}

// runRollback: P (node 1) restarts, as a node does, with a new onion key,
// a new link key and a new address B; its earlier descriptor, validly
// signed and still unexpired, lists its old address A. Every other node's
// discovery still lists A, so each probes it; the attacker takes A over
// once P has left it. Once a victim holds P's new descriptor (P's
// restarted node probes everyone, and is proven at B), each of its probes
// of A is relayed to P and P's signature put on the old descriptor, which
// lists A as it should. Metric: share of answered victim probes after
// which the victim's view of P went back to an older descriptor (an
// earlier published time, or the old onion key). A passive participant at
// A never changes anyone's view of P: 0. Detail also says whether a
// fresh view (core/view) refuses the old descriptor after the new one on
// its own, the layer that stands even if a proof verified; Failed if not.
func runRollback(ctx context.Context, size Size) (Result, error) {
	nodes, tries := relayTries(size)
	const pIdx = 1
	var pID *identity.Identity
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 2, Tweak: func(i int, o *node.Options) {
		if i == pIdx {
			pID = o.Identity
		}
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	pOld := nt.Nodes[pIdx]
	oldBytes := append([]byte(nil), pOld.Descriptor()...)
	oldD, err := descriptor.Parse(oldBytes, time.Now())
	if err != nil {
		return Result{}, err
	}
	addrA := pOld.Addr()
	pOld.Close()
	pOld.Wait()
	// Published has a precision of one second: restart in a later one, so
	// that the new descriptor is strictly newer.
	for time.Now().Unix() <= oldD.Published.Unix() {
		time.Sleep(50 * time.Millisecond)
	}
	addrB := NodeAddr(nodes)
	disc, err := staticWith(nodes)
	if err != nil {
		return Result{}, err
	}
	pNew, err := node.New(node.Options{
		Identity: pID, Transport: nt.mem.NewTransport(), Listen: addrB, Discovery: disc,
		MimicCount: 2, MaintenanceInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return Result{}, fmt.Errorf("restarting P: %w", err)
	}
	if err := pNew.Start(ctx); err != nil {
		return Result{}, fmt.Errorf("restarting P: %w", err)
	}
	nt.Nodes = append(nt.Nodes, pNew) // Net.Close stops it
	newD, err := descriptor.Parse(pNew.Descriptor(), time.Now())
	if err != nil {
		return Result{}, err
	}
	atk, err := openSock(nt, addrA)
	if err != nil {
		return Result{}, fmt.Errorf("taking over P's old address: %w", err)
	}
	var victims []*node.Node
	for i, v := range nt.Nodes[:nodes] {
		if i != pIdx {
			victims = append(victims, v)
		}
	}
	holdsNew := func(v *node.Node) bool {
		pe, ok := v.View().Get(pID.ID())
		return ok && !pe.Desc.Published.Before(newD.Published)
	}
	// Bounded wait for the victims to learn P's new descriptor; those
	// that do not are left out of the tries (and counted in Detail).
	deadline := time.Now().Add(15 * time.Second)
	learned := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		learned = 0
		for _, v := range victims {
			if holdsNew(v) {
				learned++
			}
		}
		if learned == len(victims) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if learned == 0 {
		return Result{}, fmt.Errorf("no victim learned P's restarted descriptor within 15 s")
	}
	t, err := runRelay(ctx, nt, relayPlan{
		atk: atk, p: pNew, present: oldBytes, victims: victims, tries: tries,
		wait: 8 * time.Second, eligible: holdsNew,
		gained: func(before, after *view.Peer, ok bool) bool {
			if !ok || before == nil {
				return false
			}
			return after.Desc.Published.Before(before.Desc.Published) ||
				(after.Desc.OnionKey != before.Desc.OnionKey && after.Desc.OnionKey == oldD.OnionKey)
		},
	})
	if err != nil {
		return Result{}, err
	}
	if t.tries == 0 {
		return Result{}, fmt.Errorf("no victim holding P's new descriptor probed P's old address within 8 s")
	}
	// The second layer: a view that holds the new descriptor refuses the
	// old one even when handed it as proven (at A, where it was signed).
	v := view.New()
	now := time.Now()
	v.Add(&view.Peer{ID: pID.ID(), Desc: newD, Addr: addrB, Transport: "mem", Admitted: now})
	var failed string
	layer := "refused"
	if v.Add(&view.Peer{ID: pID.ID(), Desc: oldD, Addr: addrA, Transport: "mem", Admitted: now}) {
		layer = "ACCEPTED"
		failed = "a view holding P's new descriptor took the older one, proven at its address (views roll back)"
	}
	return Result{
		Metric:   "share of answered victim probes after which the victim's view of P held an older descriptor",
		Attacker: float64(t.gained) / float64(t.tries),
		Passive:  0,
		Failed:   failed,
		Detail: fmt.Sprintf("P restarted from %v to %v (published %s -> %s, new onion key %v); %d of %d victims learned it; %s; a fresh view handed the old descriptor after the new: %s",
			addrA, addrB, oldD.Published.Format(time.TimeOnly), newD.Published.Format(time.TimeOnly), newD.OnionKey != oldD.OnionKey,
			learned, len(victims), relayDetail(t), layer),
	}, nil
}
