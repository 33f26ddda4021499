// Package simnet is an in-memory network for simulating many Tarzan nodes
// in one process, in the spirit of quic-go's testutils/simnet: every
// datagram a node writes is copied, judged (MTU, loss), delayed (latency,
// jitter, the sender's access bandwidth) and queued at the receiver, which
// reads it when it is due.
//
// Link model (per datagram from src to dst):
//
//  1. size > MTU of the path: dropped (DropMTU), like a DF packet.
//  2. the sender's uplink is a token bucket of Bandwidth bytes/s holding
//     Burst bytes: the datagram leaves when the bucket has its bytes; if
//     that is more than MaxQueueDelay away, it is dropped (DropQueue).
//  3. lost with probability Loss (DropLoss).
//  4. delivered after Latency + uniform[0, Jitter) (reordering is allowed,
//     as for UDP); a full receive queue drops it (DropQueue).
//
// Link parameters come from Config.Link, a function of the two addresses,
// so a scenario can make paths between domains slower than within them.
// Addresses are assigned by Plan (how many /16s, how many nodes per /24).
//
// Determinism: every random choice (loss, jitter, address plan) comes from
// generators seeded from Config.Seed, one per sender, so a sender's
// sequence of decisions is reproducible for a given sequence of writes.
// Goroutine scheduling still decides the interleaving between nodes.
package simnet
