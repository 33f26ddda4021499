// Package pathbench holds the adapter-side path benchmark: a SOCKS5
// client, the socks adapter, the pnat exit adapter and a TCP server on
// loopback, with the two adapters' ReadPackets and WritePackets pumped
// into each other in one process (a tunnel with no hops). It measures
// what the client and exit stacks cost per byte and per connection,
// without the core, the transports or other processes:
//
//	go test -run '^$' -bench . -benchmem ./plugins/adapter/internal/pathbench
//
// cpu-ns/op is the process's user+system CPU (getrusage) per operation:
// both stacks, the pumps, the client and the server together.
package pathbench
