// Package traffic is a deterministic, discrete-event model of Tarzan's
// data plane for traffic-analysis experiments: the mimic topology, tunnel
// paths and cover-traffic policies are the real code (core/mimic, and any
// sdk/cover Policy, in process or out of process), while links, queues and
// the cover engine's pacing are modelled frame by frame on the same 5 ms
// grid as core/node's shaper.
//
// Why a model and not the real nodes of package sim: an experiment must
// give the same results for the same seed (researchers compare policies
// run by run), and real nodes in real time cannot: goroutine scheduling
// and the machine's load move every frame by microseconds, and a timing
// attack sees them. Here one goroutine advances a virtual clock, every
// random choice comes from the seed, and a run of minutes of network time
// takes seconds. docs/DECISIONS.md D17 records the trade; the namespace
// test bed (tarzan experiment --testbed) runs the real nodes to check that
// the model's conclusions hold.
//
// What is modelled: each directed mimic link has a FIFO queue of data
// frames (bounded), a capacity in frames per second, a one-way latency
// with jitter, and the shaping state of core/node/cover.go (rate from the
// policy, evenly paced or Poisson gaps, data first and padding when there
// is none; rate 0 sends data at once). Every frame has the same size on
// the wire, as in the real link layer. A tunnel is a path of mimic links
// chosen like node.SelectPath (over the mimics each hop chose, uniformly
// over their /16s). The exit hands each forward packet to a server and
// the server's answers enter the tunnel backwards at the exit. With
// Workload.AckEvery each end acknowledges what it receives, as TCP
// carried through the tunnel does: a data frame back per AckEvery frames
// (or when the delayed-ACK timer ends), which the other end absorbs.
//
// Loop cover: a node whose policy implements cover.Looper with a rate > 0
// keeps LoopTunnels tunnels of its own (the same path rule, no exit) and,
// once every policy has been consulted, sends loops as a Poisson process
// of that rate, each through one of them chosen at random: a cell that
// crosses the tunnel's links to the last hop, which answers at once, and
// comes back along the same links (2×Hops link frames). Loop cells queue
// like data: on a shaped link they take a slot that would have been
// padding, on an unshaped one they are extra frames, and the policies'
// LinkStats count them as data, as the core counts its pings. They are
// not workload: Result.Loops counts them (frames, loops sent, returned
// within LoopTimeout, lost, round trips) apart from DataFrames, goodput,
// latencies, the exits' cleartext and the flows. Loop schedules and
// choices draw from a generator of their own, so that on links shaped at
// rates that do not follow the data (constant, poisson) a run with loops
// puts the same frames on the wire as one without, with the same
// workload.
//
// What is not: cryptography, handshakes, link and tunnel failures,
// per-frame processing time in relays, congestion control; links send
// at most their capacity and drop data beyond the queue bound. Loop
// alerts and the rebuilding of loop tunnels are not modelled either:
// nothing in the model drops or delays on purpose.
package traffic
