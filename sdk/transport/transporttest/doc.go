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
package transporttest
