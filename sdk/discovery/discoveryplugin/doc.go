// Package discoveryplugin runs a discovery.Discovery in a child process.
//
// Plugin side: func main() { discoveryplugin.Serve(myFactory) }.
// Node side: d, err := discoveryplugin.Launch(launcher, options).
//
// Every call is a gRPC call (service tarzan.discovery.v1.Discovery);
// discovery traffic is small. Next is a blocking unary call cancelled
// through its context. If the child dies it is restarted and, if Start had
// been called, started again with the same descriptor; a pending Next
// waits for the new child. Admitted descriptors are not replayed: a
// gossiping backend relearns them from the core's next reports.
//
// The host side also implements discovery.Messenger. Outbox is a blocking
// unary call like Next and waits for a restarted child the same way;
// Deliver only queues (the core calls it from its receive path) and a
// forwarder hands the child whatever is queued as one batch, dropping
// messages when the queue is full or the child is down (they are
// datagrams). A backend that is not a Messenger answers Unimplemented, and
// the host's Outbox and Deliver then return discovery.ErrNoMessaging.
package discoveryplugin
