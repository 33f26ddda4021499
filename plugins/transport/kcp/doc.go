// Package kcp is a Tarzan transport over KCP (github.com/xtaci/kcp-go/v5),
// used as a datagram carrier: one KCP session per peer address, in
// message mode (each datagram is one KCP message, never split or merged),
// with Reed-Solomon FEC, a bounded send window and a bounded send queue.
//
// # ARQ, FEC and the TCP inside
//
// The frames we carry already hold TCP (and the core's own link layer).
// KCP's ARQ retransmits and delivers in order, so beneath TCP it means
// two loss-recovery loops and head-of-line blocking: one lost frame holds
// back every later frame of that peer until it is repaired, for all the
// tunnels on the link. We therefore keep KCP from doing what TCP does
// better and lean on what it adds:
//
//   - FEC repairs most losses without a round trip, so neither the
//     head-of-line stall nor TCP's own recovery is triggered;
//   - ARQ is tuned to repair what FEC misses quickly (nodelay: RTO floor
//     30 ms, ×1.5 back-off, fast resend after 2 duplicate acks, acks sent
//     at once) and its congestion window is off (nocwnd), since a second
//     congestion controller under TCP's only fights it;
//   - nothing waits long: a datagram that has not entered KCP's window
//     within max_delay_ms is dropped (the TCP inside has timed it out by
//     then), the per-peer queue is bounded, WriteBatch never blocks, and a
//     session that hears nothing for idle_timeout_ms is closed (KCP alone
//     would retransmit to a dead peer for ever).
//
// # Wire overhead
//
// Every KCP segment has a 24-byte header; with FEC every packet also
// carries a 6-byte FEC header and a 2-byte length, 32 bytes in all, and
// each group of fec_data packets is followed by fec_parity parity
// packets. With mtu 1452 (a 1500-byte IPv6 path) a segment carries up to
// 1420 bytes (MaxPayload(1452, true)), 1428 without FEC: a 1408-byte frame
// fits whole, and larger datagrams are refused. kcp-go's SetMtu (v5.7 on)
// counts the FEC header itself.
// Bandwidth on top: acks, plus parity (30 % for 10+3).
//
// # Options
//
//	fec_data, fec_parity  FEC shards per group; 0, 0 turns FEC off (default 10, 3)
//	nodelay               1: the low-latency ARQ profile above, 0: KCP's normal mode (default 1)
//	interval              KCP update interval, ms (default 10)
//	window                send and receive window, segments (default 256)
//	mtu                   largest UDP payload sent, bytes (default 1452)
//	queue                 datagrams waiting per peer before KCP (default 1024)
//	max_delay_ms          longest a datagram waits for the window (default 250)
//	idle_timeout_ms       silence after which a session is closed (default 60000)
//	replace_after_ms      silence of a live session after which a new session
//	                      from its address replaces it (default idle_timeout_ms/4;
//	                      keep it above the core's keepalive interval; 0: at once,
//	                      which lets one spoofed packet take the link down)
//
// Both ends must use the same FEC settings.
//
// # Measured (why FEC 10+3 is the default)
//
// TestLossProfile, 2-core dev VM: 2000 datagrams/s of 1408 bytes (22.5
// Mb/s) for 3 s across a link with 10 ms delay each way and i.i.d. loss in
// each direction. The kernel here lacks sch_netem (and iptables), so the
// link is a loopback relay in the test rather than tc netem in a
// namespace pair. Latency is one way, send to ReadBatch; "wire" is all
// bytes both ways relative to the payload.
//
//	loss  carrier        delivered   p50      p99      max      wire
//	0 %   udp            100.00 %    10.8 ms  12.1 ms  15.6 ms  100 %
//	0 %   kcp fec 0+0    100.00 %    10.6 ms  12.9 ms  31.4 ms  104 %
//	0 %   kcp fec 10+3   100.00 %    10.7 ms  12.2 ms  20.6 ms  136 %
//	0 %   kcp fec 4+2    100.00 %    10.7 ms  13.6 ms  26.0 ms  157 %
//	1 %   udp             99.08 %    10.7 ms  14.0 ms  19.3 ms  100 %
//	1 %   kcp fec 0+0    100.00 %    10.9 ms  33.5 ms  35.6 ms  105 %
//	1 %   kcp fec 10+3   100.00 %    10.8 ms  31.9 ms  93.1 ms  143 %
//	1 %   kcp fec 4+2    100.00 %    10.8 ms  24.7 ms  43.8 ms  162 %
//	5 %   udp             95.02 %    10.8 ms  11.7 ms  14.5 ms  100 %
//	5 %   kcp fec 0+0    100.00 %    27.8 ms 127.6 ms 164.1 ms  118 %
//	5 %   kcp fec 10+3   100.00 %    10.9 ms  32.6 ms  65.3 ms  144 %
//	5 %   kcp fec 4+2    100.00 %    10.8 ms  35.3 ms  93.0 ms  164 %
//
// Without FEC, 5 % loss nearly triples the median (head-of-line stalls
// behind retransmissions) and p99 reaches 6 RTTs. 10+3 keeps the median
// at the path delay and p99 near one extra RTT up to 5 % loss, for 36–44 %
// more bytes; 4+2 costs 20 points more bandwidth and is no better at
// 5 %. On clean paths fec_data=0, fec_parity=0 saves the parity; on paths
// with losses it is the worst choice for tunnelled TCP. One run per row:
// treat differences of a few ms in p99/max as noise.
//
// BenchmarkKCPFrames (loopback, 1408-byte frames in batches of 64, FEC
// 10+3): 28–40k frames/s, no loss.
//
// # Limits
//
// KCP is unauthenticated: anyone who can spoof a peer's address can
// inject packets that open a new session (PUSH, sn 0). Such a session is
// only a candidate while the peer's live session hears it (receive.go):
// its messages go up, where the core's link layer rejects forged ones, and
// it replaces the live session only after that has been silent for
// replace_after_ms. So a spoofed opener no longer takes a live link down
// (it did until D41's open item was fixed: a zero window stalled the
// replacement until both sessions expired), and a peer that restarts is
// written to again replace_after_ms after its old session fell silent, not
// at once (its own messages reach us at once). A peer whose address
// changes (NAT rebinding) looks like a new peer; the old session expires
// after idle_timeout_ms. In a
// simultaneous open the losing side's first datagrams are lost with its
// session.
package kcp
