// Package sim runs many real Tarzan nodes (core/node) in one process on a
// simulated network (sim/simnet) and measures what the design promises at
// scale: convergence of gossip membership, verifiable mimic links, tunnel
// builds, per-node memory, churn and a Sybil adversary.
//
// Time is real, with short intervals: see docs/DECISIONS.md ("Simulator
// in real time") for why the goroutine-based nodes are not driven by a
// virtual clock.
//
// Sharing: a real deployment computes every mimic table and verifies every
// descriptor once per node. Here nodes whose views hold the same member set
// share one table (TableCache), and a descriptor verified once is not
// verified again (DescriptorCache); both are exact (same inputs, same
// result) and plug into the core through node.Options hooks.
package sim
