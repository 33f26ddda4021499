// Package ipservice is Tarzan's IP service, built on the engine's public
// tunnel API (core/node): the client side carries local applications' IP
// packets into tunnels, the exit side hands the packets that reach this
// node as a tunnel's last hop to the exit adapter and sends the replies
// back down their circuits.
//
// Client side (client.go, flows.go): packets from the client adapter are
// assigned to tunnels by flow (the adapter's isolation group); a flow
// never shares a tunnel with another, and a tunnel carries only
// destinations its exit's published policy accepts (policy.go). Spare
// tunnels are kept built ahead of need. Both sides track the TCP flows
// they carry, to reset them at once when they cannot continue, and both
// put what enters a tunnel through a fair queue (fq.go): each inner flow
// gets its share, and a flow that sends more than it is what is dropped.
//
// Exit side (exit.go): the exit policy is enforced on every packet
// (the in-tunnel resolver addresses excepted); a refused packet is
// answered with ICMP unreachable.
//
// Assembly (the order matters: the node hands DATA to the exit handler
// as soon as it runs):
//
//	svc, err := ipservice.New(ipservice.Options{ClientAdapter: tun, ExitAdapter: pnat})
//	opts.ExitHandler = svc.ExitHandler() // nil without an exit adapter
//	n, err := node.New(opts)
//	err = svc.Start(n)
//	err = n.Start(ctx)
//
// Each packet is parsed once per hop (ippkt.Parse): the Info goes down
// to the MSS clamp, the policy and the flow trackers.
//
// Goroutines (all run under the node's lifetime through node.Go, so
// node.Wait waits for them):
//
//  1. clientLoop (one, with a client adapter) reads batches of packets
//     from the adapter, picks each one's tunnel and puts it in the
//     client's fair queue (fq.go), or queues it while that tunnel is
//     built; it never waits on the engine. After each batch it sends
//     the queue itself while the engine has room and nobody else is
//     sending (fairQueue.drain: no hand-off); otherwise the client fair
//     queue's sender (one, fairQueue.run calling sendClient) hands the
//     queued packets to their tunnels, flow by flow in deficit round
//     robin; it is the goroutine the engine's backpressure stops. Both
//     send a batch between node.Cork and Uncork, so that its frames
//     leave in one transport write made by the sending goroutine.
//  2. buildForFlow (one per flow whose tunnel is being built, with a
//     helper that cancels the build when the node stops) builds the
//     tunnel, then sends the packets queued for it, or answers them with
//     ICMP unreachable when no tunnel could be built.
//  3. buildSpare (at most one at a time) builds a spare tunnel, started
//     when a new flow takes the spare and at maintenance rounds.
//  4. exitLoop (one, with an exit adapter) reads the adapter's replies and
//     puts each in the exit's fair queue, by circuit and inner flow, then
//     drains it as clientLoop does; the exit fair queue's sender (one,
//     sendExit) sends what the engine had no room for down the circuits,
//     in deficit round robin.
//  5. an adapter writer (one per adapter, adapter.Writer.Run) hands the
//     packets the service writes one at a time to its adapter in
//     batches; CloseFlow goes through it too, behind the flow's last
//     packets. What a receive loop's batch delivers (fromExit, exitData)
//     is queued without a wake-up, and Run is woken once at the end of
//     the batch (node.OnBatchEnd, flushWriters), not once per packet.
//     The receive loop never writes to an adapter itself: a stuck
//     adapter fills the queue and is dropped from, the links go on.
//  6. closer (one) closes the adapters when the node stops, which ends
//     the loops above.
//
// The engine's goroutines call in: the receive goroutine delivers DATA
// from a tunnel's exit (ipTunnel.fromExit) and, at an exit, DATA that
// reached the last hop (ExitData); the maintenance goroutine runs
// maintain (spares, idle tunnels, the exit adapter's restarts).
package ipservice
