// Package transporttest helps test transports and the code that uses them.
//
// Network is an in-memory network of "mem" transports for fast many-node
// tests, with optional latency and loss:
//
//	net := transporttest.NewNetwork(transporttest.WithLatency(5*time.Millisecond))
//	a, b := net.NewTransport(), net.NewTransport()
//
// Run is the conformance suite every transport must pass. A plugin author
// runs it against their own transport with one line:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t *testing.T) transport.Transport { return mytransport.New() })
//	}
//
// and, to check the same transport out of process, against
// transportplugin.Launch (see that package's tests for the idiom).
//
// Beyond the basics (one datagram, a full batch, buffer ownership,
// oversize datagrams, Close, concurrent writers) the suite checks the
// contract in package transport's documentation on loopback: IPv6 ([::1]),
// a wildcard listener (0.0.0.0 and [::]) told its advertised address,
// batches mixing a live peer with one that went away and one that never
// answers (each WriteBatch within 2 s, no error, the live peer served), a
// flood to a peer that does not read (WriteBatch keeps returning; traffic
// resumes when it reads), a peer restarted at the same address (traffic
// flows again within 10 s), 16 peers on one IP address, order of one
// writer's datagrams, and a throughput floor of 512 KiB/s. The suite's own
// tests run it on broken transports (a stall on a new peer, a blocking
// write, no reconnection, a wrong source, a hello naming 0.0.0.0, no IPv6,
// peers told apart by IP alone, reordering, a slow sender, bridge
// arguments a descriptor cannot carry) and require each to fail where it
// is broken, and only there. Under the race detector the time bounds
// double and the floor quarters.
package transporttest
