package traffic

import (
	"errors"
	"fmt"
	"time"

	"github.com/tarzan-net/tarzan/core/loopcover"
	corenode "github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

// Config describes one run of the model.
type Config struct {
	Nodes   int    // default 200
	K       int    // mimics each node chooses (default 6)
	Hops    int    // tunnel length (default 3)
	Domains int    // /16s the nodes are spread over (default Nodes/2)
	Seed    uint64 // topology, paths, workload, jitter and Poisson gaps

	Latency  time.Duration // one-way per link (default 20 ms)
	Jitter   time.Duration // extra uniform delay per frame (default 2 ms)
	Capacity float64       // frames per second a link can send (default 1000 ≈ 11 Mbit/s)
	Queue    int           // data frames a link queue holds (default 256, as the core)

	Warmup   time.Duration // cover only, before any flow starts (default 5 s)
	Duration time.Duration // time with flows (default 60 s)

	Initiators int      // nodes that start flows (default 20)
	Workload   Workload // what they send

	// Policy returns node i's cover policy; nil means "none" everywhere.
	// It is called once per node, in order.
	Policy func(i int) (cover.Policy, error)

	// TickMany, if set, consults every policy due in one grid step in one
	// call (e.g. many sessions of one out-of-process plugin, see
	// coverplugin.Pool.TickMany) instead of one Tick each: targets[k] or
	// errs[k] (errs nil: no errors) answer policies[k]. The answers, and
	// so the run, are the same as with one Tick each.
	TickMany func(now time.Time, policies []cover.Policy, links [][]cover.LinkStats) (targets [][]cover.Target, errs []error)

	// Observe, if set, sees every frame on every link when it is sent:
	// when it left and when it arrives (since the start of the run), the
	// sending and the receiving node's index. Observers never learn what
	// a frame carries.
	Observe func(sent, arrived time.Duration, src, dst int)
}

// Workload is what each initiator does with its tunnel.
type Workload struct {
	// Kind is "onoff" (upload: exponential on and off periods, sending
	// Rate frames/s with Poisson arrivals while on) or "web" (requests
	// with Poisson arrivals at Rate per second, each one frame up and a
	// response of Size frames on average, geometric, sent down by the
	// server at the link capacity).
	Kind string
	Rate float64 // default 50 when Kind is empty too

	On   time.Duration // mean on period (onoff; default 2 s)
	Off  time.Duration // mean off period (onoff; default 2 s)
	Size float64       // mean response frames (web; default 20)

	// AckEvery, when > 0, makes each flow's receiving end acknowledge
	// the data it gets, as TCP carried through the tunnel does: the exit
	// sends one backward data frame for every AckEvery forward data
	// frames it hands to the server, and the initiator one forward frame
	// for every AckEvery answer frames it receives. An acknowledgement
	// is a data frame on the wire (it takes a padding slot, or raises a
	// link's data demand) but carries nothing for the application: it
	// is not in the exit's cleartext, the goodput or the latencies. 0
	// (the default): no acknowledgements, data only one way.
	AckEvery int
	// AckDelay is the delayed-ACK timer: frames still unacknowledged
	// this long after the first of them arrived are acknowledged with
	// one frame then, even if fewer than AckEvery. 0 acknowledges at
	// once (only with AckEvery 1: TCP with quick acknowledgements, like
	// gVisor's). Acknowledgements leave in the grid step their frame
	// arrived in, or the first one after the timer.
	AckDelay time.Duration
}

// Grid is the cover engine's pacing step, as in core/node.
const Grid = 5 * time.Millisecond

// Loop cover, with core/node's defaults: a node whose policy asks for
// loops keeps LoopTunnels tunnels of its own for them, and a loop whose
// reply is not back within LoopTimeout is lost.
const (
	LoopTunnels = loopcover.DefaultTunnels
	LoopTimeout = loopcover.DefaultTimeout
)

// PayloadBytes is the cleartext carried by one data frame (a tunnel
// cell's payload, PROTOCOL §5): what the server sees per frame.
const PayloadBytes = 1288

func (c *Config) setDefaults() {
	if c.Nodes == 0 {
		c.Nodes = 200
	}
	if c.K == 0 {
		c.K = corenode.DefaultMimicCount
	}
	if c.Hops == 0 {
		c.Hops = corenode.DefaultTunnelHops
	}
	if c.Domains == 0 {
		c.Domains = max(1, c.Nodes/2)
	}
	if c.Latency == 0 {
		c.Latency = 20 * time.Millisecond
	}
	if c.Jitter == 0 {
		c.Jitter = 2 * time.Millisecond
	}
	if c.Capacity == 0 {
		c.Capacity = 1000
	}
	if c.Queue == 0 {
		c.Queue = 256
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * time.Second
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.Initiators == 0 {
		c.Initiators = 20
	}
	w := &c.Workload
	if w.Kind == "" {
		// No workload given: the default one. (A given kind with rate 0
		// is a run with no data at all, cover only.)
		w.Kind = "onoff"
		if w.Rate == 0 {
			w.Rate = 50
		}
	}
	if w.On == 0 {
		w.On = 2 * time.Second
	}
	if w.Off == 0 {
		w.Off = 2 * time.Second
	}
	if w.Size == 0 {
		w.Size = 20
	}
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < c.Hops+2:
		return fmt.Errorf("traffic: %d nodes for %d hops", c.Nodes, c.Hops)
	case c.Domains > c.Nodes || c.Domains < c.Hops+1:
		return fmt.Errorf("traffic: %d domains for %d nodes and %d hops (need hops+1 ≤ domains ≤ nodes)", c.Domains, c.Nodes, c.Hops)
	case c.Hops < 1 || c.Hops > 4:
		return fmt.Errorf("traffic: %d hops out of range 1..4", c.Hops)
	case c.Initiators < 1 || c.Initiators > c.Nodes:
		return fmt.Errorf("traffic: %d initiators for %d nodes", c.Initiators, c.Nodes)
	case c.Capacity <= 0 || c.Workload.Rate < 0:
		return errors.New("traffic: capacity must be positive and the workload rate not negative")
	case c.Workload.Kind != "onoff" && c.Workload.Kind != "web":
		return fmt.Errorf("traffic: workload %q: want onoff or web", c.Workload.Kind)
	case c.Latency < 0 || c.Jitter < 0 || c.Warmup < 0 || c.Duration <= 0:
		return errors.New("traffic: latency, jitter and warm-up must not be negative, duration must be positive")
	case c.Workload.AckEvery < 0 || c.Workload.AckDelay < 0:
		return errors.New("traffic: ack every and ack delay must not be negative")
	case c.Workload.AckEvery == 0 && c.Workload.AckDelay > 0:
		return errors.New("traffic: an ack delay without ack every (how many frames one acknowledgement covers)")
	case c.Workload.AckEvery > 1 && c.Workload.AckDelay == 0:
		return fmt.Errorf("traffic: ack every %d needs an ack delay (the delayed-ACK timer, e.g. 40 ms), or a last frame would never be acknowledged", c.Workload.AckEvery)
	}
	return nil
}
