// Package cover defines cover-traffic policies.
//
// The core's cover engine owns every link's send queue and decides, frame by
// frame, whether a slot carries data or padding; on the wire the two are
// indistinguishable. A policy only sets the schedule: it is consulted once
// per tick with per-link statistics and answers with a per-link target rate.
// It is never consulted per packet, so an out-of-process policy costs one
// RPC per tick, not per frame.
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
	// Interval is how often the engine calls Tick. It is read once.
	Interval() time.Duration
	// Tick returns one Target per entry of links, in the same order. The
	// policy must not retain links after returning.
	Tick(now time.Time, links []LinkStats) ([]Target, error)
	// Close releases the policy.
	Close() error
}

// Factory creates a policy from its options.
type Factory func(options map[string]string) (Policy, error)
