// Package cover defines cover-traffic policies.
//
// The core's cover engine owns every link's send queue and decides, frame by
// frame, whether a slot carries data or padding; on the wire the two are
// indistinguishable. A policy only sets the schedule: it is consulted once
// per tick with per-link statistics and answers with a per-link target rate.
// It is never consulted per packet, so an out-of-process policy costs one
// RPC per tick, not per frame.
//
// A policy may also ask the node for loop cover (Looper, an optional
// interface the node finds by type assertion): cells the node sends
// through tunnels of its own to their last hop and back, to notice an
// active attacker who drops or delays its traffic.
//
// The glue that runs a Policy in a child process lives in
// sdk/cover/coverplugin; an in-memory fake in covertest.
package cover

import "time"

// LinkStats describes one mimic link during the tick that just ended.
type LinkStats struct {
	Peer      string // the mimic's short ID (never an address)
	Queued    int    // data frames waiting to be sent now
	DataSent  uint64 // data frames sent during the tick
	CoverSent uint64 // padding frames sent during the tick
	DataRecv  uint64 // data frames received during the tick
	CoverRecv uint64 // padding frames received during the tick
}

// Target is the schedule for one link until the next tick.
type Target struct {
	// Rate is the total number of frames per second (data plus padding) the
	// link sends. Data takes the place of padding; data beyond Rate waits
	// in the queue (or is dropped when the queue is full). Rate 0 means
	// "no shaping": data goes out at once and no padding is sent.
	Rate float64
	// Poisson makes the link's frames (data or padding alike) leave at
	// independent, exponentially distributed gaps of mean 1/Rate, a
	// Poisson process, instead of evenly spaced. The mean rate is the
	// same, but the gaps carry no phase for data to disturb, and a cell
	// waits an exponential time for its slot (as in Loopix). The engine
	// draws the gaps from the node's seeded randomness, and frames still
	// leave on its release grid (5 ms), so gaps shorter than a slot put
	// several frames in one. A new Rate applies at once. Poisson has no
	// effect when Rate is 0.
	Poisson bool
}

// Policy decides cover traffic.
type Policy interface {
	// Name is the policy's registered name, e.g. "constant".
	Name() string
	// Interval is how often the engine calls Tick. It is read at start and
	// again after every Tick; a new value applies from the next tick.
	Interval() time.Duration
	// Tick returns one Target per entry of links, in the same order. The
	// policy must not retain links after returning.
	Tick(now time.Time, links []LinkStats) ([]Target, error)
	// Close releases the policy.
	Close() error
}

// Factory creates a policy from its options.
type Factory func(options map[string]string) (Policy, error)

// Looper is an optional interface of a Policy: a policy that implements it
// asks the node for loop cover, as Loopix nodes send loop messages.
//
// Who calls it and when: the node, once, when it is made (core/node.New,
// after the policy was created and, out of process, configured;
// coverplugin carries the answer across the process boundary). The
// answer holds for the node's life; a policy that changes its mind later
// is not heard.
//
// What the core does: it keeps a few tunnels of its own (built by the
// usual path rule, no exit needed) and, as a Poisson process of the
// given rate, sends one cell through a randomly chosen one of them to its
// last hop and back (a tunnel ping: on the wire, and at every hop but the
// last, the same as data). A loop whose reply has not come back within a
// timeout is lost. The node counts loops sent, returned and lost, keeps
// their round-trip times, and when too many of the recent loops were lost
// it warns, counts an alert and rebuilds its loop tunnels through other
// hops. Loop cells are data cells: on a shaped link they take the place
// of padding, on an unshaped one they are extra frames. The thresholds
// are the node's (core/node Options), not the policy's.
type Looper interface {
	// Loops returns the node-wide loop schedule. Rate 0 means no loops.
	Loops() Loops
}

// Loops is a node's loop-cover schedule.
type Loops struct {
	// Rate is the mean number of loops per second the whole node sends
	// (not per link), at independent exponential gaps. It must be finite
	// and >= 0; 0 means none.
	Rate float64
}
