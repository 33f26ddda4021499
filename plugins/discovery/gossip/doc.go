// Package gossip is the epidemic membership backend ("gossip"): nodes
// learn each other's signed descriptors by exchanging small messages with
// a few random peers every round, after Tarzan (Freedman & Morris, 2002).
// It implements discovery.Discovery and discovery.Messenger; the core
// carries its messages in type-6 frames (docs/PROTOCOL.md §3).
//
// Options:
//
//	bootstrap  comma-separated "host:port" IP literals; one is enough to join
//	interval   round length (Go duration, default 1s); rounds that bring
//	           nothing new stretch the wait, doubling up to 32 intervals,
//	           and any news brings it back to one
//	fanout     peers sent a DIGEST per round (default 3)
//	max_bytes  message bytes sent per round, replies included (default 16384)
//	expiry     forget a descriptor this long after its Expires (default 0)
//
// What a node gossips: its own descriptor (from Start) and every
// descriptor its core reports through Admitted, i.e. verified and proven
// reachable, until Expires + expiry. Descriptors learned from other nodes
// are verified (descriptor.Parse) and proposed through Next, and gossiped
// onward only once the core admits them: a node never spreads what its
// core rejected. A proposed descriptor the core does not admit is
// remembered (not proposed again) for 6 rounds.
//
// Wire format (all integers big-endian; every message ≤ MaxMessage = 1390
// bytes; decode accepts exactly one encoding per message):
//
//	header   version(1)=1 type(1) nonce(8)
//	DIGEST   type 1: header bitmap(32) sum(4) × popcount(bitmap)
//	SUMMARY  type 2: header reply(8) bitmap(32) count(2) entry(13) × count
//	         entry = id_prefix(8) published(4) flags(1), id_prefix strictly increasing
//	REQUEST  type 3: header count(2) id_prefix(8) × count        (count ≥ 1)
//	DESCS    type 4: header count(1) [len(2) descriptor(len)] × count   (1 ≤ count, 1 ≤ len ≤ 1024)
//
// A node's IDs fall in 256 buckets by the ID's first byte. A bucket's sum
// is the XOR over the descriptors in it of the first 4 bytes of
// SHA-256("tarzan-gossip-v1" || ID || u64 published); published is Unix
// seconds (u32 on the wire). id_prefix is the first 8 bytes of the ID.
//
// A round: forget what expired; send a DIGEST with a fresh random nonce
// to fanout random admitted peers (at the address of the first of our own
// transports they advertise), and to every bootstrap address that is not
// yet an admitted peer's (every round for the first 30 rounds, then every
// 8th). The bitmap marks non-empty buckets; one sum follows per marked
// bucket. Two nodes with the same view exchange exactly one DIGEST.
//
// On a DIGEST that marks fewer than a quarter as many buckets as its own
// (a newcomer, typically at a bootstrap node), a node that knows at least
// 8 peers answers instead with DESCS (echoing the DIGEST's nonce) holding
// its own descriptor and 7 random admitted ones: introductions, so that
// every newcomer gets peers to gossip with even when all of them knock at
// one bootstrap address in the same round. Otherwise, on a DIGEST whose
// buckets differ from its own, the receiver answers
// with at most 4 SUMMARY pages echoing the DIGEST's nonce and carrying a
// fresh nonce of its own (reply). A page's bitmap marks the buckets it
// lists completely; its entries are what the sender knows in them, its
// own, admitted (flag 1 = sendable) and proposed-not-yet-admitted (flag 0)
// descriptors. A bucket too large for one page is listed partly, without
// its bit.
//
// On a SUMMARY that echoes a nonce it sent to that address, the initiator
// sends a REQUEST (echoing reply) for sendable entries newer than what it
// has, not asked for in the last 2 rounds, and DESCS (echoing reply) with
// its sendable descriptors the other side lacks in the marked buckets or
// lists older. On a REQUEST echoing a nonce it sent to that address, a
// node answers DESCS with the sendable descriptors asked for, echoing the
// nonce of the DIGEST that started the exchange. DESCS are accepted only
// when they echo a nonce the receiver sent to that address. So every
// message but DIGEST answers a nonce sent to its source, and a DIGEST
// from a forged source draws at most 4 messages to it. Nonces expire
// after 3 rounds.
//
// Every message sent, replies included, is charged to the round's budget
// (max_bytes of message data); what does not fit is dropped and happens
// in a later round. Received messages are untrusted: malformed,
// unsolicited and invalid ones are counted and dropped; every descriptor
// goes through descriptor.Parse (signature, size, validity times) before
// it is proposed, and a copy of one already known is dropped before the
// signature check.
//
// Refresh: the core re-signs its descriptor at half-life but tells only
// peers that probe it. So for admitted peers past 9/16 of their
// descriptor's lifetime, a node proposes the bare address (at most fanout
// per round, each peer again after 1/8 of the lifetime): the core's probe
// brings back the current descriptor, the core admits it, and gossip
// spreads it, back to its owner too, whose backend adopts a verified
// descriptor of its own identity newer than the one from Start. A node
// that restarts publishes a newer descriptor and is learned the same way
// from its bootstrap.
//
// Stats counters: msgs_in, bytes_in, msgs_out, bytes_out, out_digest,
// out_summary, out_request, out_descs, in_digest, in_summary, in_request,
// in_descs, digest_match, proposed, duplicate, admitted, admitted_invalid,
// expired, refresh_probes, self_refreshed, drop_malformed,
// drop_unsolicited, drop_invalid_descriptor, drop_budget, drop_encode,
// drop_outbox_full; and the gauges view, candidates, round.
package gossip
