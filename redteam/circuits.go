package redteam

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
)

const (
	kindDestroy   = 5
	kindKeepalive = 6
)

func init() {
	register(Attack{
		Name:     "selective-dos",
		Finding:  "a relay that fails every extension toward honest nodes steers the initiator's repairs to its colluder",
		Severity: "high",
		Run:      runSelectiveDoS,
	})
	register(Attack{
		Name:     "create-flood",
		Finding:  "one mimic opens circuits at a relay without limit",
		Severity: "medium",
		Run:      runCreateFlood,
	})
	register(Attack{
		Name:     "tag-forgery",
		Finding:  "cells that fail their tag are dropped silently forever, so forgery tries are free",
		Severity: "low",
		Run:      runTagForgery,
	})
}

// runSelectiveDoS: hostile relay H spoils every CREATE it sends on behalf
// of an EXTEND unless it goes to its colluder C (the node ID in the
// handshake is changed, so the honest next hop refuses at once). Honest
// nodes build tunnels, first while H behaves (the passive baseline), then
// while it attacks. Metric: tunnels in which C directly follows H, per
// tunnel built.
func runSelectiveDoS(ctx context.Context, size Size) (Result, error) {
	tunnels := 200
	if size == Full {
		tunnels = 2000
	}
	const nodes = 10
	var attacking atomic.Bool
	var hostileID, colluder atomic.Pointer[identity.ID]
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		self := o.Identity.ID()
		o.Tap = &node.Tap{Sending: func(to identity.ID, pl []byte) bool {
			if h, c := hostileID.Load(), colluder.Load(); attacking.Load() && h != nil && *h == self &&
				pl[0] == kindCreate && c != nil && to != *c {
				pl[hdrLen] ^= 0xff // the handshake names another node: refused
			}
			return true
		}}
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	rng := mrand.New(mrand.NewPCG(3, 4))
	var h *node.Node                    // set after the warm-up
	var c identity.ID                   // set after the warm-up
	follows := map[[2]identity.ID]int{} // (hop, next hop) -> tunnels
	phase := func() (steered, built, failed int) {
		for t := 0; t < tunnels && ctx.Err() == nil; t++ {
			var from *node.Node
			for from == nil || (h != nil && (from.ID() == h.ID() || from.ID() == c)) {
				from = nt.Nodes[rng.IntN(nodes)]
			}
			bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			tun, err := from.BuildTunnel(bctx, 3)
			cancel()
			if err != nil {
				failed++
				continue
			}
			built++
			hops := tun.Hops()
			for j := 0; j+1 < len(hops); j++ {
				follows[[2]identity.ID{hops[j].ID, hops[j+1].ID}]++
				if h != nil && hops[j].ID == h.ID() && hops[j+1].ID == c {
					steered++
				}
			}
			tun.Close()
		}
		return
	}
	// Warm-up: the hostile relay and its colluder are the pair of nodes
	// that most often follow each other in tunnels while all behave, i.e.
	// a relay that paths reach and one of the mimics it chose. Which nodes
	// those are depends on the epoch (mimic choices follow each node's
	// /16, not its ID), so the scenario does not fix them in advance.
	phase()
	var best [2]identity.ID
	for pair, k := range follows {
		if k > follows[best] {
			best = pair
		}
	}
	if follows[best] == 0 {
		return Result{}, fmt.Errorf("no relay was followed by anyone in %d tunnels", tunnels)
	}
	for _, n := range nt.Nodes {
		if n.ID() == best[0] {
			h = n
		}
	}
	c = best[1]
	hid := h.ID()
	hostileID.Store(&hid)
	colluder.Store(&c)
	ps, pb, pf := phase()
	attacking.Store(true)
	as, ab, af := phase()
	if pb == 0 || ab == 0 {
		return Result{}, fmt.Errorf("no tunnel built (passive %d failed, attack %d failed)", pf, af)
	}
	p := float64(ps) / float64(pb)
	// Two-proportion test: the attack phase's share may exceed the passive
	// one by three standard errors of their difference before it counts.
	q := max(p, 1/float64(pb))
	sd := math.Sqrt(q * (1 - q) * (1/float64(ab) + 1/float64(pb)))
	return Result{
		Metric:    "tunnels with the colluder right after the hostile relay, per tunnel built",
		Attacker:  float64(as) / float64(ab),
		Passive:   p,
		Tolerance: 3 * sd,
		Detail: fmt.Sprintf("hostile %s, colluder %s; passive: %d of %d tunnels (%d builds failed); attacking: %d of %d (%d failed)",
			h.ID().Short(), c.Short(), ps, pb, pf, as, ab, af),
	}, nil
}

// circTop is the top bit a node uses for circuit IDs toward peer: the node
// with the lower ID uses IDs with the top bit clear (PROTOCOL.md §9).
func circTop(self, peer identity.ID) uint32 {
	if bytes.Compare(self[:], peer[:]) < 0 {
		return 0
	}
	return 1 << 31
}

// runCreateFlood: a mimic of the victim sends CREATEs with fresh circuit
// IDs and genuine handshakes (replayed from a pool: the victim keeps no
// replay cache of client keys) at the flood rate. Its baseline is the same
// mimic sending keepalives at the same rate, which any mimic may.
func runCreateFlood(ctx context.Context, size Size) (Result, error) {
	nt, vd, err := startFloodNet(ctx)
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	const victim = 0
	v := nt.Nodes[victim]
	var x *node.Node
	for _, m := range v.Mimics() {
		if i := nt.Index(m.ID); m.Up && i >= 0 {
			x = nt.Nodes[i]
			break
		}
	}
	if x == nil {
		return Result{}, fmt.Errorf("victim has no live mimic link")
	}
	pool := make([][]byte, 256)
	for i := range pool {
		_, msg, err := onion.NewClientHandshake(rand.Reader, v.ID(), vd.OnionKey)
		if err != nil {
			return Result{}, err
		}
		pool[i] = msg
	}
	top := circTop(x.ID(), v.ID())
	pl := make([]byte, link.PayloadSize)
	var mu sync.Mutex
	send := func(kind byte, i int) error {
		mu.Lock()
		defer mu.Unlock()
		clear(pl)
		pl[0] = kind
		if kind == kindCreate {
			binary.BigEndian.PutUint32(pl[4:8], top|uint32(0x10000000+i))
			copy(pl[hdrLen:], pool[i%len(pool)])
		}
		return x.SendLinkPayload(v.ID(), pl)
	}
	plan := planFor(size)
	before := v.Stat("circuits_created")
	r, err := floodAgainst(ctx, nt, victim, plan,
		func(i int) error { return send(kindKeepalive, i) },
		func(i int) error { return send(kindCreate, i) },
		[]string{"circuits_created", "drop_create_rate", "drop_create_limit", "drop_queue_full"})
	if err != nil {
		return r, err
	}
	// The cost that matters is the key agreements one mimic can make the
	// victim do. An honest mimic may open DefaultCreateRate circuits a
	// second with a burst of twice that: the passive bound.
	held := v.Stat("circuits_created") - before
	secs := plan.dur.Seconds()
	cpu := fmt.Sprintf("CPU per CREATE %.1f µs against %.1f µs per keepalive; ", r.Attacker, r.Passive)
	r.Metric = "tunnel handshakes one mimic makes the victim do, per second"
	r.Attacker = float64(held) / secs
	r.Passive = (node.DefaultCreateRate*secs + 2*node.DefaultCreateRate) / secs
	r.Tolerance = 0.1 * r.Passive // the bucket refills while the phases change over
	r.Detail = cpu + r.Detail
	if held > node.DefaultMaxCircuitsPerLink {
		r.Failed = fmt.Sprintf("one mimic opened %d circuits (bound %d per link)", held, node.DefaultMaxCircuitsPerLink)
	}
	return r, nil
}

// runTagForgery: the first hop of a circuit (here its own initiator, which
// any previous hop could equally be) sends cells with random contents on
// it. A relay that drops them and carries on gives the forger unlimited
// tries; one that tears the circuit down after a small budget does not.
// Metric: forged cells the relay checked before the circuit was closed.
func runTagForgery(ctx context.Context, size Size) (Result, error) {
	forgeries := 200
	if size == Full {
		forgeries = 2000
	}
	const nodes = 4
	var mu sync.Mutex
	var x identity.ID
	var circ uint32
	destroyed := -1
	sentSoFar := 0
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		if i != 1 {
			return
		}
		o.Tap = &node.Tap{
			Sending: func(to identity.ID, pl []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				if pl[0] == kindCreate && to == x && circ == 0 {
					circ = binary.BigEndian.Uint32(pl[4:8])
				}
				return true
			},
			Received: func(from identity.ID, pl []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				if pl[0] == kindDestroy && from == x && circ != 0 && binary.BigEndian.Uint32(pl[4:8]) == circ && destroyed < 0 {
					destroyed = sentSoFar
				}
				return true
			},
		}
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	forger := nt.Nodes[1]
	var victim *node.Node
	for _, m := range forger.Mimics() {
		if i := nt.Index(m.ID); m.Up && i >= 0 {
			victim = nt.Nodes[i]
			break
		}
	}
	mu.Lock()
	x = victim.ID()
	mu.Unlock()
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tun, err := forger.BuildTunnelPath(bctx, []identity.ID{victim.ID()})
	if err != nil {
		return Result{}, err
	}
	defer tun.Close()
	mu.Lock()
	c := circ
	mu.Unlock()
	if c == 0 {
		return Result{}, fmt.Errorf("did not see the circuit's CREATE")
	}
	tampered0 := victim.Stat("drop_cell_tampered")
	pl := make([]byte, link.PayloadSize)
	for i := 0; i < forgeries; i++ {
		pl[0] = kindRelayFwd
		binary.BigEndian.PutUint32(pl[4:8], c)
		rand.Read(pl[hdrLen:])
		mu.Lock()
		sentSoFar = i
		mu.Unlock()
		if err := forger.SendLinkPayload(victim.ID(), pl); err != nil {
			return Result{}, err
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // let the victim keep up: this is about tries, not load
		}
	}
	time.Sleep(200 * time.Millisecond)
	checked := victim.Stat("drop_cell_tampered") - tampered0
	mu.Lock()
	d := destroyed
	mu.Unlock()
	detail := fmt.Sprintf("%d forged cells sent on one circuit; the relay counted %d tag failures", forgeries, checked)
	if d >= 0 {
		detail += fmt.Sprintf(" and closed the circuit after %d", d)
	} else {
		detail += " and kept the circuit"
	}
	return Result{
		Metric:    "forged cells a relay checks on one circuit",
		Attacker:  float64(checked),
		Passive:   0,
		Tolerance: forgeryBudget,
		Detail:    detail,
	}, nil
}

// forgeryBudget is the most tag failures the harness lets one circuit
// cost a relay before it must close the circuit.
const forgeryBudget = 32
