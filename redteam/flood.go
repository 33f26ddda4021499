package redteam

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// floodPlan sizes a flood: rate frames per second for dur, with the quiet
// baseline measured for as long before it.
type floodPlan struct {
	rate int
	dur  time.Duration
}

func planFor(size Size) floodPlan {
	if size == Quick {
		return floodPlan{rate: 2000, dur: 3 * time.Second}
	}
	return floodPlan{rate: 2000, dur: 30 * time.Second} // the must-show
}

// startFloodNet starts the six-node network the floods run in and parses
// the victim's (node 0's) descriptor, whose keys an attacker needs to make
// genuine handshakes. On error nothing is left running.
func startFloodNet(ctx context.Context) (*Net, *descriptor.Descriptor, error) {
	nt, err := StartNet(ctx, NetConfig{Nodes: 6, K: 3})
	if err != nil {
		return nil, nil, err
	}
	vd, err := descriptor.Parse(nt.Nodes[0].Descriptor(), time.Now())
	if err != nil {
		nt.Close()
		return nil, nil, err
	}
	return nt, vd, nil
}

// honestTunnel builds a two-hop tunnel whose first hop is the victim, from
// a node that has a link to it: an honest user of the victim as a relay.
func honestTunnel(ctx context.Context, nt *Net, victim int) (*node.Tunnel, error) {
	v := nt.Nodes[victim]
	var from *node.Node
	var next identity.ID
	for _, m := range v.Mimics() {
		if !m.Up {
			continue
		}
		i := nt.Index(m.ID)
		if i < 0 {
			continue
		}
		if from == nil {
			from = nt.Nodes[i]
		} else if next == (identity.ID{}) {
			next = m.ID
		}
	}
	if from == nil || next == (identity.ID{}) {
		return nil, fmt.Errorf("victim %s has fewer than two live mimic links", v.ID().Short())
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return from.BuildTunnelPath(bctx, []identity.ID{v.ID(), next})
}

// pingMedian pings the tunnel's last hop every 50 ms for dur and returns
// the median round trip and how many pings were lost.
func pingMedian(ctx context.Context, t *node.Tunnel, dur time.Duration) (time.Duration, int, int) {
	var rtts []time.Duration
	lost, sent := 0, 0
	end := time.Now().Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		d, err := t.Ping(pctx, 1)
		cancel()
		sent++
		if err != nil {
			lost++
		} else {
			rtts = append(rtts, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(rtts) == 0 {
		return 0, lost, sent
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], lost, sent
}

// heapInUse forces a collection and reads the live heap of the process
// (every node of the network is in it, the victim included).
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// floodResult measures a flood's cost to the victim's process and to an
// honest tunnel through it. Three phases, each plan.dur long: quiet (the
// tunnel's ping median and the process's idle CPU rate), a junk flood at
// the same rate (frames of the wrong size, refused before any work: what
// any outsider can cost a node, the passive baseline), and the attack.
// The figure is CPU per attack frame against CPU per junk frame; the
// verdict also fails when the tunnel's ping median under the attack is more
// than twice the quiet one (the bound). send writes one attack
// frame; frame(i) is the i-th.
func floodResult(ctx context.Context, nt *Net, victim int, plan floodPlan, send func(frame []byte) error, frame func(i int) []byte, counters []string) (Result, error) {
	junk := make([]byte, 100) // any length but the frame size is malformed
	junkSend := rawSender(nt.junk, nt.Nodes[victim].Addr())
	return floodAgainst(ctx, nt, victim, plan, func(int) error { return junkSend(junk) },
		func(i int) error { return send(frame(i)) }, counters)
}

// floodAgainst is floodResult with its own baseline: baseline(i) sends the
// i-th frame a passive participant in the attacker's place could send at
// the same rate at no gain (junk from outside; keepalives on a link).
func floodAgainst(ctx context.Context, nt *Net, victim int, plan floodPlan, baseline, attack func(i int) error, counters []string) (Result, error) {
	tun, err := honestTunnel(ctx, nt, victim)
	if err != nil {
		return Result{}, err
	}
	defer tun.Close()
	v := nt.Nodes[victim]

	cpu0, wall0 := cpuTime(), time.Now()
	quiet, qlost, qsent := pingMedian(ctx, tun, plan.dur)
	idle := float64(cpuTime()-cpu0) / float64(time.Since(wall0)) // CPU per wall second
	if quiet == 0 {
		return Result{}, fmt.Errorf("no ping returned through the victim before the flood (%d sent)", qsent)
	}

	junkCPU, nj := floodCPU(ctx, plan, idle, baseline, nil)

	before := map[string]uint64{}
	for _, c := range counters {
		before[c] = v.Stat(c)
	}
	heap0 := heapInUse()
	var under time.Duration
	var flost, fsent int
	atkCPU, n := floodCPU(ctx, plan, idle, attack, func() {
		under, flost, fsent = pingMedian(ctx, tun, plan.dur)
	})
	heap1 := heapInUse()
	if under == 0 {
		under = 2 * time.Second // every ping lost: count it as the timeout
	}
	// Pings are tens of microseconds on an in-memory network: scheduler
	// noise alone moves them by a few. A 1 ms floor keeps the ratio about
	// the victim, not about the Go scheduler.
	floor := time.Millisecond
	ratio := float64(max(under, floor)) / float64(max(quiet, floor))
	detail := fmt.Sprintf("%d attack frames in %v: %.1f µs CPU each (baseline: %.1f µs, %d frames); honest ping median quiet %v (%d/%d lost), under attack %v (%d/%d lost, ratio %.2f); heap %+.1f MiB",
		n, plan.dur, atkCPU, junkCPU, nj, quiet.Round(10*time.Microsecond), qlost, qsent,
		under.Round(10*time.Microsecond), flost, fsent, ratio, float64(int64(heap1)-int64(heap0))/(1<<20))
	for _, c := range counters {
		detail += fmt.Sprintf("; %s +%d", c, v.Stat(c)-before[c])
	}
	r := Result{
		Metric:    "victim CPU per flood frame (µs)",
		Attacker:  atkCPU,
		Passive:   junkCPU,
		Tolerance: max(5, 2*junkCPU), // a rate check and a counter, not a key agreement
		Detail:    detail,
	}
	if ratio > 2 {
		r.Failed = fmt.Sprintf("honest ping median rose %.2fx under the flood (bound 2x)", ratio)
	}
	return r, nil
}

// floodCPU floods while during (if any) runs, and returns the process CPU
// per frame above the idle rate, in microseconds, and the frames sent.
func floodCPU(ctx context.Context, plan floodPlan, idle float64, send func(i int) error, during func()) (float64, int) {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	sent := make(chan int, 1)
	cpu0, wall0 := cpuTime(), time.Now()
	go func() { sent <- flood(fctx, plan, send) }()
	if during != nil {
		during()
	}
	n := <-sent
	extra := float64(cpuTime()-cpu0) - idle*float64(time.Since(wall0))
	if n == 0 {
		return 0, 0
	}
	return max(0, extra) / float64(n) / float64(time.Microsecond), n
}

// flood calls send(0), send(1), ... at plan.rate until ctx ends or
// plan.dur passes, a few every 5 ms; it returns how many it sent.
func flood(ctx context.Context, plan floodPlan, send func(i int) error) int {
	const tick = 5 * time.Millisecond
	perTick := max(1, plan.rate*int(tick)/int(time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	end := time.Now().Add(plan.dur)
	sent := 0
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return sent
		case <-t.C:
		}
		for k := 0; k < perTick; k++ {
			if err := send(sent); err != nil {
				return sent
			}
			sent++
		}
	}
	return sent
}

// rawSender writes frames from tr to dst, one datagram each.
func rawSender(tr transport.Transport, dst netip.AddrPort) func(frame []byte) error {
	return func(frame []byte) error {
		return tr.WriteBatch([]transport.Packet{{Addr: dst, Buf: frame, N: len(frame)}})
	}
}
