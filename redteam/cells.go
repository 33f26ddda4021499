package redteam

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
)

// Link payload layout (docs/PROTOCOL.md §4.2): kind(1) reserved(3)
// circuit_id(4) cell; a cell starts with its 16-byte slot.
const (
	kindCreate   = 1
	kindRelayFwd = 3
	kindRelayBwd = 4
	hdrLen       = 8
	slotLen      = 16
)

func init() {
	register(Attack{
		Name:     "position",
		Finding:  "a relay learns its position in the path from what it reads in the cells it relays",
		Severity: "critical",
		Run:      runPosition,
	})
	register(Attack{
		Name:     "tag-reserved",
		Finding:  "an entry and an exit that collude mark a circuit through an honest middle hop in the link header",
		Severity: "high",
		Run:      runTagReserved,
	})
	register(Attack{
		Name:     "ping-clock",
		Finding:  "the hop a PING is for reads the initiator's clock from it (links a node's tunnels by clock offset)",
		Severity: "low",
		Run:      runPingClock,
	})
}

// circKey names a circuit as one node sees it: the peer it came from and
// the circuit ID on that link.
type circKey struct {
	from identity.ID
	circ uint32
}

// slotLog records, per node, the slot of every forward relay cell the node
// received, in arrival order per circuit: what a relay reads.
type slotLog struct {
	mu    sync.Mutex
	cells map[circKey][][slotLen]byte
}

func (s *slotLog) tap() *node.Tap {
	return &node.Tap{Received: func(from identity.ID, pl []byte) bool {
		if pl[0] == kindRelayFwd {
			k := circKey{from, binary.BigEndian.Uint32(pl[4:8])}
			var slot [slotLen]byte
			copy(slot[:], pl[hdrLen:hdrLen+slotLen])
			s.mu.Lock()
			s.cells[k] = append(s.cells[k], slot)
			s.mu.Unlock()
		}
		return true
	}}
}

func (s *slotLog) keys() map[circKey]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[circKey]bool{}
	for k := range s.cells {
		out[k] = true
	}
	return out
}

// runPosition: every node records what it reads in the slots of the cells
// it relays. Honest initiators build three-hop tunnels one at a time and
// ping random hops through them; since each build adds one circuit at each
// hop of a known path, every recorded circuit has a known position. The
// attacker learns a rule "first slot value read -> position" on half the
// circuits and applies it to the other half. A passive relay, which reads
// nothing that depends on its position, guesses at chance: 1/3.
func runPosition(ctx context.Context, size Size) (Result, error) {
	tunnels := 90
	if size == Full {
		tunnels = 900
	}
	const nodes = 10
	logs := make([]*slotLog, nodes)
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		logs[i] = &slotLog{cells: map[circKey][][slotLen]byte{}}
		o.Tap = logs[i].tap()
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	type sample struct {
		first uint32 // the first 4 slot bytes of the first cell read
		pos   int
	}
	var samples []sample
	rng := rand.New(rand.NewPCG(1, 2))
	for t := 0; t < tunnels && ctx.Err() == nil; t++ {
		from := nt.Nodes[rng.IntN(nodes)]
		before := make([]map[circKey]bool, nodes)
		for i := range logs {
			before[i] = logs[i].keys()
		}
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tun, err := from.BuildTunnel(bctx, 3)
		if err == nil {
			for p := 0; p < 3; p++ {
				tun.Ping(bctx, rng.IntN(3))
			}
			hops := tun.Hops()
			tun.Close()
			for pos, h := range hops {
				i := nt.Index(h.ID)
				for k, cells := range logs[i].snapshot() {
					if !before[i][k] && len(cells) > 0 {
						samples = append(samples, sample{binary.BigEndian.Uint32(cells[0][:4]), pos + 1})
					}
				}
			}
		}
		cancel()
	}
	if len(samples) < 30 {
		return Result{}, fmt.Errorf("only %d relayed circuits observed", len(samples))
	}
	// Learn on the even samples, test on the odd ones. The passive relay
	// reads nothing position-dependent and guesses the most common
	// position; the attacker falls back to that guess for a value it has
	// not seen.
	votes := map[uint32][4]int{}
	var prior [4]int
	for i := 0; i < len(samples); i += 2 {
		v := votes[samples[i].first]
		v[samples[i].pos]++
		votes[samples[i].first] = v
		prior[samples[i].pos]++
	}
	common := argmax(prior)
	right, passive, tested := 0, 0, 0
	for i := 1; i < len(samples); i += 2 {
		guess := common
		if v, ok := votes[samples[i].first]; ok {
			guess = argmax(v)
		}
		if guess == samples[i].pos {
			right++
		}
		if common == samples[i].pos {
			passive++
		}
		tested++
	}
	acc := float64(right) / float64(tested)
	chance := float64(passive) / float64(tested)
	sd := math.Sqrt(max(chance*(1-chance), 0.1) / float64(tested))
	return Result{
		Metric:    "share of circuits whose position the relay guesses right",
		Attacker:  acc,
		Passive:   chance,
		Tolerance: 4 * sd,
		Detail: fmt.Sprintf("%d circuits at known positions from %d tunnels; rule learned on half, %d/%d right on the other half (always guessing hop %d: %d); %d distinct first values",
			len(samples), tunnels, right, tested, common, passive, len(votes)),
	}, nil
}

// argmax is the position (1..3) with the most votes, the lowest on a tie.
func argmax(v [4]int) int {
	best := 1
	for p := 2; p <= 3; p++ {
		if v[p] > v[best] {
			best = p
		}
	}
	return best
}

func (s *slotLog) snapshot() map[circKey][][slotLen]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[circKey][][slotLen]byte, len(s.cells))
	for k, v := range s.cells {
		out[k] = v
	}
	return out
}

// runTagReserved: a hostile entry writes a mark into the reserved bytes of
// every forward cell it sends to the honest middle, and a hostile exit into
// every backward cell; each reads the reserved bytes of what reaches it.
// Metric: share of marked cells whose mark reaches the colluder.
func runTagReserved(ctx context.Context, size Size) (Result, error) {
	pings := 20
	if size == Full {
		pings = 200
	}
	mark := [3]byte{0xab, 0xcd, 0xef}
	var entryID, exitID, middleID identity.ID
	var mu sync.Mutex
	marked, seen := 0, 0
	tapOf := func(self *identity.ID) *node.Tap {
		return &node.Tap{
			Sending: func(to identity.ID, pl []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				if to != middleID || middleID == (identity.ID{}) {
					return true
				}
				if (*self == entryID && pl[0] == kindRelayFwd) || (*self == exitID && pl[0] == kindRelayBwd) {
					copy(pl[1:4], mark[:])
					marked++
				}
				return true
			},
			Received: func(from identity.ID, pl []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				if from == middleID && middleID != (identity.ID{}) && [3]byte(pl[1:4]) == mark {
					seen++
				}
				return true
			},
		}
	}
	const nodes = 8
	selves := make([]identity.ID, nodes)
	nt, err := StartNet(ctx, NetConfig{Nodes: nodes, K: 3, Tweak: func(i int, o *node.Options) {
		selves[i] = o.Identity.ID()
		o.Tap = tapOf(&selves[i])
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	c := chain(nt, 4, nil) // initiator, entry, middle, exit
	if c == nil {
		return Result{}, fmt.Errorf("no chain of four linked nodes")
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tun, err := nt.Nodes[c[0]].BuildTunnelPath(bctx, ids(nt, c[1:]))
	if err != nil {
		return Result{}, err
	}
	defer tun.Close()
	mu.Lock()
	entryID, middleID, exitID = nt.Nodes[c[1]].ID(), nt.Nodes[c[2]].ID(), nt.Nodes[c[3]].ID()
	mu.Unlock()
	lost := 0
	for i := 0; i < pings; i++ {
		pctx, pc := context.WithTimeout(ctx, 500*time.Millisecond)
		if _, err := tun.Ping(pctx, 2); err != nil {
			lost++
		}
		pc()
	}
	mu.Lock()
	defer mu.Unlock()
	share := 0.0
	if marked > 0 {
		share = float64(seen) / float64(marked)
	}
	return Result{
		Metric:   "share of marked cells whose mark crossed the honest middle",
		Attacker: share,
		Passive:  0,
		Detail: fmt.Sprintf("%d pings through entry %s, middle %s, exit %s: %d cells marked, %d marks read by the colluder, %d pings lost",
			pings, entryID.Short(), middleID.Short(), exitID.Short(), marked, seen, lost),
	}, nil
}

// runPingClock: a hostile hop reads the data of every PING delivered to it
// and takes its second half as Unix nanoseconds. Metric: share of PINGs
// whose data holds a time within a minute of the hop's own clock; random
// bytes would almost never do so.
func runPingClock(ctx context.Context, size Size) (Result, error) {
	pings := 20
	if size == Full {
		pings = 200
	}
	var mu sync.Mutex
	got, near := 0, 0
	tap := &node.Tap{Delivered: func(from identity.ID, circ uint32, cmd byte, data []byte) {
		const cmdPing = 5
		if cmd != cmdPing || len(data) < 16 {
			return
		}
		t := time.Unix(0, int64(binary.BigEndian.Uint64(data[8:16])))
		mu.Lock()
		got++
		if d := time.Since(t); d > -time.Minute && d < time.Minute {
			near++
		}
		mu.Unlock()
	}}
	nt, err := StartNet(ctx, NetConfig{Nodes: 4, K: 3, Tweak: func(i int, o *node.Options) {
		if i == 1 {
			o.Tap = tap
		}
	}})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	c := chain(nt, 2, func(idx []int) bool { return idx[1] == 1 })
	if c == nil {
		return Result{}, fmt.Errorf("the hostile node has no links")
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tun, err := nt.Nodes[c[0]].BuildTunnelPath(bctx, ids(nt, c[1:]))
	if err != nil {
		return Result{}, err
	}
	defer tun.Close()
	for i := 0; i < pings; i++ {
		if _, err := tun.Ping(bctx, 0); err != nil {
			return Result{}, err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got == 0 {
		return Result{}, fmt.Errorf("no PING reached the hostile hop")
	}
	return Result{
		Metric:   "share of PINGs that carry the sender's clock",
		Attacker: float64(near) / float64(got),
		Passive:  0,
		Detail:   fmt.Sprintf("%d PINGs read at the hop; %d held a time within ±1 min of its clock", got, near),
	}, nil
}
