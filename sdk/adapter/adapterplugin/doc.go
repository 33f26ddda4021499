// Package adapterplugin runs an adapter.Adapter in a child process.
//
// Plugin side: func main() { adapterplugin.Serve(myFactory) }.
// Node side: a, err := adapterplugin.Launch(launcher, options).
//
// Control over gRPC (service tarzan.adapter.v1.Adapter): Configure
// (options → name, role and which optional interfaces the adapter
// implements), Open(cfg), CloseFlow, SetExclude, Close. The host-side value
// always implements adapter.FlowCloser and adapter.ExcludeUpdater; the
// calls are forwarded if the plugin's adapter implements them and are
// no-ops otherwise. If the child dies it is restarted and opened again
// with the same Config (and the latest exclusions). Meanwhile ReadPackets
// blocks and WritePackets fails with an error wrapping
// pluginkit.ErrUnavailable.
//
// # Data channel
//
// As for transports (see transportplugin): a Unix SOCK_SEQPACKET pair, the
// child's end as file descriptor 3 named by TARZAN_PLUGIN_DATA_FD. One
// message is one batch, big-endian:
//
//	count  uint16
//	then count times:
//	  flow  uint64     adapter.Packet.Flow
//	  len   uint16
//	  data  [len]byte  the IP packet
//
// Messages are at most 128 KiB; larger batches are split. A batch is one
// message both ways, so a WritePackets of 64 packets costs one write and
// one wake-up of the other process, where 64 calls of one cost 64 (the
// core batches its writes for that reason: D30). The host copies each
// packet to the caller's Buf; one that does not fit is dropped and counted.
//
// # Shared memory (Linux)
//
// Where the platform has memfd, the host also offers the child the
// shared-memory rings transport plugins use (D47; sdk/internal/datachan):
// one sealed memfd with a host → child and a child → host ring of 1,024
// slots of 2 KiB, the socket above kept as a doorbell rung only when the
// other side sleeps. A slot carries one packet: a 32-byte header (length
// uint16, 2 zero bytes, flow uint64, little-endian, zero padding), then up
// to 2,016 bytes of packet (every tunnelled packet is at most a cell's
// InnerMTU-sized payload; a larger one is dropped and counted). The child
// takes the offer by answering Configure with the gRPC header
// "tarzan-datachan: shm1"; a child that does not (an older plugin binary)
// keeps the socket framing. The host offers the rings only when run with
// TARZAN_DATACHAN=shm (on Linux): the socket framing is the default since
// D59, which found the rings added latency for no end-to-end gain. In the child the
// adapter's ReadPackets fills ring slots directly and WritePackets reads
// straight from them; the host copies once each way and checks every
// slot and index it reads (a bad slot is dropped and counted as
// host_malformed; an impossible index gets the child killed and
// restarted with fresh memory). PluginStats says which channel is in use
// (host_shm_channel 1 or 0).
package adapterplugin
