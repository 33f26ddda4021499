// Package transportplugin runs a transport.Transport in a child process.
//
// Plugin side, in your main:
//
//	func main() { transportplugin.Serve(func(opts map[string]string) (transport.Transport, error) { ... }) }
//
// Node side:
//
//	t, err := transportplugin.Launch(pluginkit.Launcher{Path: exe, Args: args, Name: "udp"}, options)
//
// t is a transport.Transport like any other, and a pluginkit.Reporter. If
// the child dies it is restarted (see pluginkit) and listens again on the
// address the first child bound, so peers keep reaching the node. While it
// restarts, WriteBatch returns an error wrapping transport.ErrUnavailable
// and ReadBatch blocks until the new child is ready (or Close).
//
// # Control
//
// gRPC service tarzan.transport.v1.Transport (internal/transportpb):
// Configure(options) creates the transport from the factory and returns
// its name, Listen(addr) binds it and starts the data pumps, Stats returns
// counters (merged with those of a Transport implementing StatsReporter),
// Close closes it.
//
// The optional interfaces of package transport cross the boundary too.
// CredentialSetter and PeerVerifier: the host's transport always has
// them (SetCredentials, SetPeer) and ignores a child's Unimplemented.
// ParamsProvider, PeerParamsSetter and AdvertiseSetter (Params,
// SetPeerParams, SetAdvertised): the child names in its Configure answer
// those its transport implements, and the transport Launch returns
// implements exactly those, so a type assertion on it answers as it
// would on the child's transport (a plugin built before these RPCs names
// none). What the host was given (credentials, peers, their parameters,
// the advertised address) is handed again to a restarted child before
// its packets move; Params answers with the child's last value while the
// child restarts.
//
// # Data channel
//
// Packets never travel over gRPC. The host creates a Unix SOCK_SEQPACKET
// socket pair per child and passes one end as file descriptor 3
// (exec.Cmd.ExtraFiles; go-plugin leaves it alone), naming it in the
// environment variable TARZAN_PLUGIN_DATA_FD=3. Both directions use the
// same format; one seqpacket message is one batch:
//
//	count  uint16                 number of packets in the message
//	then count times:
//	  addr  [16]byte              IPv6 address; IPv4 as ::ffff:a.b.c.d
//	  port  uint16
//	  len   uint16
//	  data  [len]byte
//
// All integers are big-endian. addr/port is the destination on the host →
// plugin direction and the source on plugin → host. IPv4-mapped addresses
// are unmapped on decode, so an IPv4 peer appears as a plain IPv4 address.
// A message is at most 128 KiB (a full batch of BatchSize MaxDatagram
// frames is about 90 KiB); larger batches are split. A malformed message
// is dropped and counted. The socket is reliable and ordered, and a full
// socket blocks the writer: back-pressure, not loss, between host and
// child.
//
// Writers build a message without copying the packets: the count and
// headers are gathered with the packets' own buffers into one writev.
//
// The child reads with 64 KiB buffers and the host drops (and counts) a
// datagram larger than the caller's Buf, as the transport contract says.
//
// # Shared memory (Linux)
//
// Where memfd exists and the node runs with TARZAN_DATACHAN=shm, the host
// also offers each child shared memory: a
// sealed memfd holding two single-producer single-consumer rings of
// 1,024 slots of 2 KiB (a 32-byte header, then up to 2,016 bytes of
// datagram), passed as fd 4 with a second socket pair (the host → child
// ring's doorbell) as fd 5, named in TARZAN_PLUGIN_SHM_FDS=4,5. A child
// that maps it answers Configure with the gRPC header
// tarzan-datachan: shm1; from then on packets cross through the rings and
// the sockets carry only doorbell bytes, written when the other side has
// said it sleeps. A child that does not answer so (an older plugin) keeps
// the socket framing above. The rings cost less CPU per frame but more
// time to a tunnel build and a first byte, so the sockets are the
// default, as for adapters (D59; D60 and its merge note). The host checks every index and
// slot header it reads from the memory: bad slots are dropped and counted
// (host_malformed); an impossible index kills the child, which is then
// restarted with fresh memory. Layout and memory ordering:
// sdk/internal/datachan (shm.go, ring.go).
package transportplugin
