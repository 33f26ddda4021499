package traffic

import (
	"container/heap"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// pickTunnels chooses the initiators and their paths the way
// node.SelectPath does: each hop among the mimics the previous one chose,
// uniformly over their /16s, no two hops (nor the initiator) in one /16;
// over the symmetric mimic sets only when that finds nothing.
func (m *model) pickTunnels() error {
	perm := m.rng.Perm(len(m.nodes))
	for _, init := range perm[:m.cfg.Initiators] {
		path, ok := m.path(init, nil, m.rng)
		if !ok {
			return errors.New("traffic: no path from an initiator: the network is too small for the hop count")
		}
		t := &tunnel{nodes: append([]int{init}, path...)}
		m.tunnels = append(m.tunnels, t)
		m.flows = append(m.flows, FlowLog{Initiator: init, Path: path})
		m.res.Initiators = append(m.res.Initiators, init)
	}
	return nil
}

// pickLoopTunnels gives every node whose policy asks for loops
// LoopTunnels tunnels of its own, by the same path rule and with no exit
// constraint, each avoiding the hops of the node's other loop tunnels
// when the mimics allow (as core/node's buildLoopTunnels does). They
// carry no workload, and are neither flows nor ground truth.
func (m *model) pickLoopTunnels() error {
	// Loops start once every policy has been consulted, so that they
	// find the links shaped (in the core, loop tunnels take a build
	// before the first loop leaves).
	var start time.Duration
	for _, n := range m.nodes {
		if n.policy != nil {
			start = max(start, n.nextTick)
		}
	}
	for i, n := range m.nodes {
		if n.loopRate <= 0 {
			continue
		}
		var others []int
		for range LoopTunnels {
			path, ok := m.path(i, others, m.loopRng)
			if !ok && len(others) > 0 {
				path, ok = m.path(i, nil, m.loopRng)
			}
			if !ok {
				return errors.New("traffic: no path for a loop tunnel: the network is too small for the hop count")
			}
			others = append(others, path...)
			n.loopTuns = append(n.loopTuns, len(m.loopTuns))
			t := &tunnel{nodes: append([]int{i}, path...)}
			m.loopTuns = append(m.loopTuns, t)
			m.res.Loops.Paths = append(m.res.Loops.Paths, t.nodes)
		}
		n.nextLoop = start + m.loopGap(n.loopRate)
		m.res.Loops.Nodes++
		m.res.Loops.Tunnels += len(n.loopTuns)
	}
	return nil
}

// path is a tunnel path from init (hops only) avoiding the given nodes,
// like node.SelectPath: over the directed mimic sets, then over the
// symmetric ones when 32 attempts found nothing.
func (m *model) path(init int, avoid []int, rng *rand.Rand) ([]int, bool) {
	for _, directed := range []bool{true, false} {
		for range 32 {
			if path, ok := m.walk(init, directed, avoid, rng); ok {
				return path, true
			}
		}
	}
	return nil, false
}

func (m *model) walk(from int, directed bool, avoid []int, rng *rand.Rand) ([]int, bool) {
	used := map[netip.Prefix]bool{domain.Top(m.nodes[from].addr): true}
	in := map[[32]byte]bool{m.nodes[from].id: true}
	for _, a := range avoid {
		in[m.nodes[a].id] = true
	}
	hops, failed := m.table.Walk(m.nodes[from].id, m.cfg.Hops, directed, used, in, nil, rng.IntN)
	if failed >= 0 {
		return nil, false
	}
	path := make([]int, len(hops))
	for i, h := range hops {
		path[i] = m.index[h]
	}
	return path, true
}

// never is a time no run reaches: the gap between packets of a workload
// of rate 0.
const never = time.Duration(math.MaxInt64 / 4)

// exp draws an exponential gap of the given mean, at most never: a draw
// of more than 4 times never's mean would not fit a Duration, and its
// conversion wrapped to a negative gap that sent packets at rate 0.
func (m *model) exp(mean time.Duration) time.Duration {
	x := m.rng.ExpFloat64() * float64(mean)
	if x >= float64(never) {
		return never
	}
	return time.Duration(x)
}

// run advances the clock grid step by grid step.
func (m *model) run() {
	cfg := m.cfg
	end := cfg.Warmup + cfg.Duration
	for _, t := range m.tunnels {
		// Every flow starts in an off period (or waiting for its first
		// request), so that they do not all start together.
		t.switchAt = cfg.Warmup + m.exp(cfg.Workload.Off)
		t.nextPkt = cfg.Warmup + m.exp(m.meanGap())
	}
	for now := time.Duration(0); now < end; now += Grid {
		m.now = now
		m.deliver(now)
		m.acknowledge(now)
		m.tick(now)
		if now >= cfg.Warmup {
			m.generate(now)
		}
		m.sendLoops(now)
		m.send(now)
	}
	m.finish()
}

// loopGap draws the gap to a node's next loop, at most never (a tiny
// rate must not wrap to a negative gap).
func (m *model) loopGap(rate float64) time.Duration {
	x := m.loopRng.ExpFloat64() / rate * float64(time.Second)
	if x >= float64(never) {
		return never
	}
	return time.Duration(x)
}

// sendLoops starts the loops that fall due by now: per node a Poisson
// process of its loop rate, each loop through one of its loop tunnels
// chosen at random, as core/node's loopLoop does. A loop is one cell
// queued on the node's first link like data.
func (m *model) sendLoops(now time.Duration) {
	for _, n := range m.nodes {
		if n.loopRate <= 0 {
			continue
		}
		for n.nextLoop <= now {
			born := n.nextLoop
			n.nextLoop += m.loopGap(n.loopRate)
			ti := n.loopTuns[m.loopRng.IntN(len(n.loopTuns))]
			if born >= m.cfg.Warmup {
				m.res.Loops.Sent++
			}
			m.enqueue(n.to[m.loopTuns[ti].nodes[1]], frame{data: true, loop: true, tun: int32(ti), pos: 0, fwd: true, born: born})
		}
	}
}

// loopArrived moves a loop cell on: forward to its tunnel's last hop,
// which answers at once (a ping), then back along the same links to the
// node that sent it.
func (m *model) loopArrived(f frame, at time.Duration) {
	t := m.loopTuns[f.tun]
	last := len(t.nodes) - 1
	if f.fwd {
		f.pos++
		if int(f.pos) == last {
			f.fwd = false
			m.enqueue(m.nodes[t.nodes[last]].to[t.nodes[last-1]], f)
			return
		}
		m.enqueue(m.nodes[t.nodes[f.pos]].to[t.nodes[f.pos+1]], f)
		return
	}
	f.pos--
	if f.pos > 0 {
		m.enqueue(m.nodes[t.nodes[f.pos]].to[t.nodes[f.pos-1]], f)
		return
	}
	if f.born < m.cfg.Warmup {
		return
	}
	if rtt := at - f.born; rtt <= LoopTimeout {
		m.res.Loops.Returned++
		m.res.Loops.RTTs = append(m.res.Loops.RTTs, rtt)
	} else {
		m.res.Loops.Lost++ // late is lost, as in the core
	}
}

func (m *model) meanGap() time.Duration {
	if m.cfg.Workload.Rate <= 0 {
		return never
	}
	return time.Duration(float64(time.Second) / m.cfg.Workload.Rate)
}

func (m *model) measuring() bool { return m.now >= m.cfg.Warmup }

// generate starts the workload's packets that fall due by now.
func (m *model) generate(now time.Duration) {
	w := m.cfg.Workload
	for ti, t := range m.tunnels {
		switch w.Kind {
		case "onoff":
			for {
				// Packets only while on; the state flips at switchAt.
				if t.on && t.nextPkt <= now && t.nextPkt < t.switchAt {
					m.enqueueForward(ti, t.nextPkt)
					t.nextPkt += m.exp(m.meanGap())
					continue
				}
				if t.switchAt <= now {
					t.on = !t.on
					if t.on {
						t.nextPkt = t.switchAt + m.exp(m.meanGap())
						t.switchAt += m.exp(w.On)
					} else {
						t.switchAt += m.exp(w.Off)
					}
					continue
				}
				break
			}
		case "web":
			for t.nextPkt <= now {
				m.enqueueForward(ti, t.nextPkt)
				t.nextPkt += m.exp(m.meanGap())
			}
		}
	}
}

func (m *model) enqueueForward(ti int, born time.Duration) {
	t := m.tunnels[ti]
	m.res.Offered++
	m.enqueue(m.nodes[t.nodes[0]].to[t.nodes[1]], frame{data: true, tun: int32(ti), pos: 0, fwd: true, born: born})
}

func (m *model) enqueue(l *link, f frame) {
	if l.queued() >= m.cfg.Queue {
		switch {
		case f.loop:
			if f.born >= m.cfg.Warmup {
				m.res.Loops.Lost++
			}
		case m.measuring():
			m.res.Dropped++
		}
		return
	}
	l.push(f)
}

// deliver hands on every frame that arrived by now.
func (m *model) deliver(now time.Duration) {
	for len(m.pending) > 0 && m.pending[0].at <= now {
		a := heap.Pop(&m.pending).(arrival)
		back := a.l.rev // counters of the receiving side
		if !a.f.data {
			back.coverRecv++
			continue
		}
		back.dataRecv++
		f := a.f
		if f.loop {
			m.loopArrived(f, a.at)
			continue
		}
		t := m.tunnels[f.tun]
		last := len(t.nodes) - 1
		if f.fwd {
			f.pos++
			if int(f.pos) == last {
				if !f.ack { // the exit's stack takes acknowledgements
					m.atExit(int(f.tun), f, a.at)
					m.owe(&t.unackedExit, a.at)
				}
				continue
			}
			m.enqueue(m.nodes[t.nodes[f.pos]].to[t.nodes[f.pos+1]], f)
		} else {
			f.pos--
			if f.pos == 0 {
				if !f.ack {
					m.delivered(f, a.at)
					m.owe(&t.unackedInit, a.at)
				}
				continue
			}
			m.enqueue(m.nodes[t.nodes[f.pos]].to[t.nodes[f.pos-1]], f)
		}
	}
}

func (m *model) delivered(f frame, at time.Duration) {
	if f.born >= m.cfg.Warmup {
		m.res.Delivered += PayloadBytes
		m.res.Latencies = append(m.res.Latencies, at-f.born)
	}
}

// atExit hands a forward packet to the server; a web request makes the
// server answer with a geometric number of frames, sent into the exit at
// once (the server is fast; the tunnel paces them).
func (m *model) atExit(ti int, f frame, at time.Duration) {
	m.delivered(f, at)
	m.flows[ti].Up = append(m.flows[ti].Up, Packet{T: at, Bytes: PayloadBytes})
	if m.cfg.Workload.Kind != "web" {
		return
	}
	t := m.tunnels[ti]
	last := len(t.nodes) - 1
	p := 1 / m.cfg.Workload.Size
	count := 1
	for m.rng.Float64() > p {
		count++
	}
	l := m.nodes[t.nodes[last]].to[t.nodes[last-1]]
	for range count {
		m.res.Offered++
		m.flows[ti].Down = append(m.flows[ti].Down, Packet{T: at, Bytes: PayloadBytes})
		m.enqueue(l, frame{data: true, tun: int32(ti), pos: int8(last), fwd: false, born: at})
	}
}

// owe notes a data frame that arrived at one end of a tunnel at at and
// is to be acknowledged.
func (m *model) owe(unacked *[]time.Duration, at time.Duration) {
	if m.cfg.Workload.AckEvery > 0 {
		*unacked = append(*unacked, at)
	}
}

// acknowledge sends the acknowledgements that fall due by now, like a
// TCP receiver behind each end of a tunnel: one frame back for every
// AckEvery data frames received, and one for fewer once the oldest of
// them has waited AckDelay. The exit's go backwards into the tunnel, the
// initiator's forwards.
func (m *model) acknowledge(now time.Duration) {
	w := m.cfg.Workload
	if w.AckEvery <= 0 {
		return
	}
	for ti, t := range m.tunnels {
		last := len(t.nodes) - 1
		for _, end := range []struct {
			unacked *[]time.Duration
			link    *link
			f       frame
		}{
			{&t.unackedExit, m.nodes[t.nodes[last]].to[t.nodes[last-1]], frame{data: true, ack: true, tun: int32(ti), pos: int8(last), fwd: false}},
			{&t.unackedInit, m.nodes[t.nodes[0]].to[t.nodes[1]], frame{data: true, ack: true, tun: int32(ti), pos: 0, fwd: true}},
		} {
			u := *end.unacked
			acks := len(u) / w.AckEvery
			u = u[acks*w.AckEvery:]
			if len(u) > 0 && now-u[0] >= w.AckDelay {
				acks++
				u = u[:0]
			}
			if len(u) == 0 {
				u = (*end.unacked)[:0]
			}
			*end.unacked = u
			for range acks {
				if m.measuring() {
					m.res.Acks++
				}
				f := end.f
				f.born = now
				m.enqueue(end.link, f)
			}
		}
	}
}

// tick consults the policies that are due, like core/node's shaper:
// the statistics of every node due in this step first, then the
// policies (in one call with Config.TickMany), then the targets in node
// order, so that the run is the same either way.
func (m *model) tick(now time.Duration) {
	due := m.due[:0]
	for i, n := range m.nodes {
		if n.policy == nil || now < n.nextTick {
			continue
		}
		for n.nextTick <= now {
			n.nextTick += n.interval
		}
		stats := make([]cover.LinkStats, len(n.out))
		for i, l := range n.out {
			stats[i] = cover.LinkStats{
				Peer: m.nodes[l.dst].short, Queued: l.queued(),
				DataSent: l.dataSent, CoverSent: l.coverSent, DataRecv: l.dataRecv, CoverRecv: l.coverRecv,
			}
			l.dataSent, l.coverSent, l.dataRecv, l.coverRecv = 0, 0, 0, 0
		}
		due = append(due, dueTick{node: i, stats: stats})
	}
	m.due = due
	if len(due) == 0 {
		return
	}
	at := time.Unix(0, 0).Add(now)
	if m.cfg.TickMany != nil {
		policies := make([]cover.Policy, len(due))
		links := make([][]cover.LinkStats, len(due))
		for k, d := range due {
			policies[k], links[k] = m.nodes[d.node].policy, d.stats
		}
		targets, errs := m.cfg.TickMany(at, policies, links)
		for k := range due {
			if k < len(targets) {
				due[k].targets = targets[k]
			}
			if errs != nil {
				due[k].err = errs[k]
			}
		}
	} else {
		for k, d := range due {
			due[k].targets, due[k].err = m.nodes[d.node].policy.Tick(at, d.stats)
		}
	}
	for _, d := range due {
		m.apply(now, m.nodes[d.node], d.targets, d.err)
	}
}

// dueTick is one node's tick in a grid step.
type dueTick struct {
	node    int
	stats   []cover.LinkStats
	targets []cover.Target
	err     error
}

// apply sets a node's links to the targets its policy answered.
func (m *model) apply(now time.Duration, n *node, targets []cover.Target, err error) {
	if err != nil {
		for _, l := range n.out {
			l.rate = 0
		}
		return
	}
	for i, l := range n.out {
		if i >= len(targets) {
			break
		}
		r := targets[i].Rate
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			r = 0
		}
		old, was := l.rate, l.poisson
		l.rate, l.poisson = r, targets[i].Poisson
		switch {
		case l.poisson && (!was || old == 0) && r > 0:
			l.next = now + time.Duration(m.rng.ExpFloat64()/r*float64(time.Second))
		case !l.poisson && (was || old == 0):
			_, l.credit = math.Modf(0.5 * r * Grid.Seconds())
		}
	}
}

// send lets every link send what its shaping allows this grid step.
func (m *model) send(now time.Duration) {
	step := m.cfg.Capacity * Grid.Seconds()
	for _, l := range m.links {
		l.capCred = math.Min(l.capCred+step, 2*step+1)
		switch {
		case l.rate == 0:
			for l.queued() > 0 && l.capCred >= 1 {
				m.transmit(l, now)
			}
		case l.poisson:
			for l.next <= now && l.capCred >= 1 {
				m.transmit(l, now)
				l.next += time.Duration(m.rng.ExpFloat64() / l.rate * float64(time.Second))
			}
			if l.next <= now {
				l.next = now + Grid // over capacity: the backlog does not pile up
			}
		default:
			l.credit += math.Min(l.rate, m.cfg.Capacity) * Grid.Seconds()
			for l.credit >= 1 && l.capCred >= 1 {
				m.transmit(l, now)
				l.credit--
			}
			l.credit = math.Min(l.credit, 2)
		}
	}
}

// transmit sends one frame on l: queued data first, else padding.
func (m *model) transmit(l *link, now time.Duration) {
	l.capCred--
	var f frame
	if l.queued() > 0 {
		f = l.pop()
		l.dataSent++ // loop cells too: the policy sees them as data, as in the core
		switch {
		case !m.measuring():
		case f.loop:
			m.res.Loops.Frames++
		default:
			m.res.DataFrames++
			l.carried++
		}
	} else {
		l.coverSent++
	}
	if m.measuring() {
		m.res.Frames++
	}
	at := now + m.cfg.Latency
	if m.cfg.Jitter > 0 {
		at += time.Duration(m.rng.Int64N(int64(m.cfg.Jitter)))
	}
	// A link delivers in order.
	at = max(at, l.lastArrival+time.Nanosecond)
	l.lastArrival = at
	if m.cfg.Observe != nil {
		m.cfg.Observe(now, at, l.src, l.dst)
	}
	m.seq++
	heap.Push(&m.pending, arrival{at: at, seq: m.seq, l: l, f: f})
}

func (m *model) finish() {
	m.res.Flows = m.flows
	// Loops still out longer than LoopTimeout when the run ends are
	// lost; younger ones are in flight. Each loop is one cell, in a
	// link's queue or on the wire.
	end := m.cfg.Warmup + m.cfg.Duration
	out := func(f frame) {
		if f.loop && f.born >= m.cfg.Warmup && end-f.born > LoopTimeout {
			m.res.Loops.Lost++
		}
	}
	for _, l := range m.links {
		for _, f := range l.queue[l.head:] {
			out(f)
		}
	}
	for _, a := range m.pending {
		out(a.f)
	}
	var busy int
	var carried uint64
	for _, l := range m.links {
		if l.carried > 0 {
			busy++
			carried += l.carried
		}
	}
	if busy > 0 {
		m.res.Utilisation = float64(carried) / float64(busy) / m.cfg.Duration.Seconds() / m.cfg.Capacity
	}
}
