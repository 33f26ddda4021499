package traffic

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/mimic"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sim/simnet"
)

// Result is what one run measured, with the ground truth an attack is
// scored against.
type Result struct {
	Nodes      int       `json:"nodes"`
	Addrs      []string  `json:"-"`          // node i's address
	Initiators []int     `json:"initiators"` // node indexes, one per flow
	Flows      []FlowLog `json:"-"`

	// Over the flow period (after the warm-up).
	Frames     uint64 `json:"frames"`      // every frame sent on every link, loop cells' included
	DataFrames uint64 `json:"data_frames"` // frames carrying workload data or its acknowledgements (not loop cells)
	Dropped    uint64 `json:"dropped"`     // data frames a full queue refused
	// Delivered is the payload bytes that reached the other end of a
	// tunnel (the server, or the initiator for answers).
	Delivered   uint64          `json:"delivered_bytes"`
	Latencies   []time.Duration `json:"-"` // one-way, per delivered data frame
	Offered     uint64          `json:"offered_frames"`
	Warmup      time.Duration   `json:"-"`
	Duration    time.Duration   `json:"-"`
	Utilisation float64         `json:"utilisation"` // mean workload data frames per link-second ÷ capacity, over links that carried them
	// Acks is the acknowledgement frames the flows' ends sent during
	// the flow period (Workload.AckEvery): in DataFrames, not in Offered.
	Acks uint64 `json:"acks"`

	// Loop cover (cover.Looper), over the flow period. Loop cells are
	// data for the links and the policies' LinkStats, but not workload:
	// their frames are in Frames and LoopFrames, not in DataFrames,
	// Delivered, Latencies, Dropped, Utilisation or Flows.
	Loops LoopResult `json:"loops"`
}

// LoopResult is what the nodes' loop cover did over the flow period.
type LoopResult struct {
	// Nodes is how many nodes sent loops (their policy implements
	// cover.Looper with a rate > 0), Tunnels their loop tunnels.
	Nodes   int `json:"nodes"`
	Tunnels int `json:"tunnels"`
	// Paths are the loop tunnels: the sending node, then the hops.
	Paths [][]int `json:"-"`
	// Frames is the link frames that carried a loop cell (out and back).
	Frames uint64 `json:"frames"`
	// Sent: loops that left their node during the flow period. Of them,
	// Returned came back within LoopTimeout, Lost did not (refused by a
	// full queue, back later than LoopTimeout, or still out longer than
	// that when the run ended); the rest were in flight at the end.
	Sent     uint64 `json:"sent"`
	Returned uint64 `json:"returned"`
	Lost     uint64 `json:"lost"`
	// RTTs are the round trips of the returned loops, from when the
	// node sent the loop (into its first link's queue) until the reply
	// reached it.
	RTTs []time.Duration `json:"-"`
}

// FlowLog is one initiator's tunnel and what the server saw of it.
type FlowLog struct {
	Initiator int
	Path      []int // hops, the last one the exit
	// Up: cleartext packets the exit handed to the server; Down: the
	// server's answers, when it sent them into the exit. Times are since
	// the start of the run.
	Up, Down []Packet
}

// Packet is one cleartext packet at the exit.
type Packet struct {
	T     time.Duration
	Bytes int
}

type frame struct {
	data bool
	ack  bool // an acknowledgement: data on the wire, nothing for the application
	loop bool // a loop cell (tun indexes model.loopTuns): data on the wire, cover for the workload
	tun  int32
	pos  int8 // index in the tunnel's node list of the hop that sent it
	fwd  bool
	born time.Duration
}

type link struct {
	src, dst int
	rev      *link
	queue    []frame
	head     int

	rate    float64
	poisson bool
	credit  float64       // even pacing
	next    time.Duration // Poisson: next departure
	capCred float64       // capacity tokens

	lastArrival time.Duration
	// Since the last policy tick. Recv counters sit on the reverse link:
	// they count what arrived at src on dst→src.
	dataSent, coverSent, dataRecv, coverRecv uint64
	carried                                  uint64 // data frames sent during the flow period
}

func (l *link) queued() int { return len(l.queue) - l.head }

func (l *link) push(f frame) {
	if l.head > 0 && l.head == len(l.queue) {
		l.queue, l.head = l.queue[:0], 0
	}
	l.queue = append(l.queue, f)
}

func (l *link) pop() frame {
	f := l.queue[l.head]
	l.head++
	return f
}

type node struct {
	id       [32]byte
	short    string
	addr     netip.Addr
	out      []*link // ordered by the peer's ID (the table's order)
	to       map[int]*link
	policy   cover.Policy
	interval time.Duration
	nextTick time.Duration

	loopRate float64       // loops per second (cover.Looper), 0: none
	loopTuns []int         // indexes in model.loopTuns
	nextLoop time.Duration // when the next loop leaves
}

type tunnel struct {
	nodes []int // initiator (or a loop's sender), hop 1, ..., exit (or last hop)
	// onoff
	on       bool
	switchAt time.Duration
	nextPkt  time.Duration
	// Arrival times of the data frames each end has not acknowledged
	// yet (Workload.AckEvery): at the exit (forward frames) and at the
	// initiator (answers).
	unackedExit, unackedInit []time.Duration
}

type arrival struct {
	at  time.Duration
	seq uint64
	l   *link
	f   frame
}

type arrivals []arrival

func (a arrivals) Len() int { return len(a) }
func (a arrivals) Less(i, j int) bool {
	if a[i].at != a[j].at {
		return a[i].at < a[j].at
	}
	return a[i].seq < a[j].seq
}
func (a arrivals) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)   { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

type model struct {
	cfg     Config
	rng     *rand.Rand
	nodes   []*node
	links   []*link // every directed link, in a fixed order
	tunnels []*tunnel
	flows   []FlowLog
	pending arrivals
	seq     uint64
	res     *Result
	now     time.Duration
	table   *mimic.Table
	index   map[[32]byte]int

	// Loop cover draws from a generator of its own, seeded from the
	// seed too: the loop tunnels, schedules and choices then leave the
	// main generator's draws (initiators, paths, workload, jitter,
	// Poisson gaps) as they are, so that on shaped links a run with
	// loops differs from one without by the loops alone.
	loopRng  *rand.Rand
	loopTuns []*tunnel

	due []dueTick // the current grid step's ticks, reused
}

// Run builds the network and runs the workload; it closes the policies.
func Run(cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &model{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x7aff1c)), loopRng: rand.New(rand.NewPCG(cfg.Seed, 0x100b5))}
	defer m.closePolicies()
	if err := m.build(); err != nil {
		return nil, err
	}
	if err := m.pickTunnels(); err != nil {
		return nil, err
	}
	if err := m.pickLoopTunnels(); err != nil {
		return nil, err
	}
	m.run()
	return m.res, nil
}

func (m *model) closePolicies() {
	for _, n := range m.nodes {
		if n.policy != nil {
			n.policy.Close()
		}
	}
}

// build places the nodes, computes the mimic table and makes the links.
func (m *model) build() error {
	cfg := m.cfg
	alloc := simnet.NewAllocator(cfg.Seed, 1, 7000)
	doms, err := alloc.NewDomains(cfg.Domains)
	if err != nil {
		return err
	}
	addrs, err := alloc.Spread(cfg.Nodes, doms)
	if err != nil {
		return err
	}
	members := make([]mimic.Member, cfg.Nodes)
	index := map[[32]byte]int{}
	m.res = &Result{Nodes: cfg.Nodes, Warmup: cfg.Warmup, Duration: cfg.Duration}
	for i := range cfg.Nodes {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], cfg.Seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		id := sha256.Sum256(append([]byte("tarzan-traffic-node"), b[:]...))
		n := &node{id: id, short: hex.EncodeToString(id[:4]), addr: addrs[i].Addr(), to: map[int]*link{}}
		m.nodes = append(m.nodes, n)
		members[i] = mimic.Member{ID: id, Addr: n.addr}
		index[id] = i
		m.res.Addrs = append(m.res.Addrs, n.addr.String())
	}
	table := mimic.NewTable(members, 0, cfg.K)
	for i, n := range m.nodes {
		for _, peer := range table.Mimics(n.id) {
			j := index[peer]
			l := &link{src: i, dst: j}
			n.out = append(n.out, l)
			n.to[j] = l
			m.links = append(m.links, l)
		}
	}
	for _, l := range m.links {
		l.rev = m.nodes[l.dst].to[l.src]
		if l.rev == nil {
			return fmt.Errorf("traffic: mimic table is not symmetric between %d and %d", l.src, l.dst)
		}
	}
	m.table = table
	m.index = index
	for i, n := range m.nodes {
		if cfg.Policy == nil {
			continue
		}
		p, err := cfg.Policy(i)
		if err != nil {
			return fmt.Errorf("traffic: cover policy of node %d: %w", i, err)
		}
		n.policy = p
		n.interval = p.Interval()
		if n.interval <= 0 {
			n.interval = time.Second
		}
		// Nodes start at different moments: so do their ticks.
		n.nextTick = time.Duration(m.rng.Int64N(int64(n.interval)))
		// Loop cover: read once, as core/node.New does.
		if l, ok := p.(cover.Looper); ok {
			r := l.Loops().Rate
			if !(r >= 0) || math.IsInf(r, 0) {
				return fmt.Errorf("traffic: cover policy %s of node %d asks for %g loops per second: want a finite number >= 0", p.Name(), i, r)
			}
			n.loopRate = r
		}
	}
	return nil
}
