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
package adapterplugin
