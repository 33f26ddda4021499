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
package discoveryplugin
