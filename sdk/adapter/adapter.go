// Package adapter defines IP adapters: where IP packets enter a Tarzan
// tunnel (a client's TUN device or SOCKS5 port) and where they leave it (an
// exit's pseudonymous NAT). It also owns the facts both sides of that
// boundary must agree on (facts.go): InnerMTU, the in-tunnel resolver
// addresses, the MSS rule and the protocol names. Use those; never copy
// their values.
//
// # The contract
//
// Open. The core opens an adapter once with a Config carrying the node's
// settings: the inner MTU, the resolver addresses (DNS) and, for an exit,
// the exit policy the core enforces. An adapter takes these from Config,
// not from options of its own, so that node.toml has one place for each.
//
// Batches. ReadPackets and WritePackets move up to BatchSize packets per
// call; an adapter should fill a read with everything it has queued (and
// block only for the first packet), and the core hands over whatever has
// queued up since its last write. Across a plugin boundary a batch is one
// message: a packet in a batch of 64 costs a tenth of one sent alone
// (D30 in docs/DECISIONS.md has the numbers), so batches matter more
// than anything else an adapter does per packet.
//
// Buffer ownership. The caller owns every buffer:
//   - ReadPackets: the adapter copies packet i into pkts[i].Buf (from
//     index 0), sets N (its length) and Flow, and keeps no reference on
//     return. A packet larger than len(pkts[i].Buf) is dropped (and should
//     be counted), never truncated.
//   - WritePackets: packet i is pkts[i].Buf[:pkts[i].N]; the adapter must be
//     done with it when WritePackets returns (copy what it keeps).
//
// There is no headroom: an earlier version passed an offset so that the
// core could layer onions in place, but the core's two copies per packet
// cost about 1% of sealing one (D30), and a packet from a plugin child
// is copied off the data channel anyway; the offset was dropped.
//
// Parsing. An adapter that looks into packets parses each one once per
// hop (sdk/ippkt.Parse) and passes the parsed ippkt.Info down, e.g. to
// ClampMSS.
//
// Errors. WritePackets consumes the packets it cannot deliver (counts them,
// like a router dropping) and returns an error only when the adapter as a
// whole cannot take packets (closed: ErrClosed). After Close, ReadPackets
// and WritePackets return ErrClosed, and a blocked ReadPackets returns.
//
// Flows. Every packet carries a Flow handle, an opaque number that keeps
// traffic of different tunnels (exit side) or isolation groups (client
// side) apart:
//   - Exit adapters receive packets from many tunnels whose inner addresses
//     may collide; the core sets Flow to the tunnel's handle on WritePackets
//     and the adapter sets the same Flow on the replies it returns from
//     ReadPackets. When a tunnel goes away the core calls CloseFlow (if the
//     adapter implements FlowCloser) so the adapter can drop its mappings.
//   - Client adapters set Flow on ReadPackets to the isolation group the
//     packet belongs to (for example one per SOCKS username; 0 = default);
//     the core never sends two groups through one tunnel, and sets Flow on
//     WritePackets to the group the reply belongs to.
//
// The glue that runs an Adapter in a child process lives in
// sdk/adapter/adapterplugin; an in-memory fake and the conformance suite
// every adapter should pass (adaptertest.Run) in adaptertest.
package adapter

import (
	"errors"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("adapter: closed")

// Role says which end of a tunnel an adapter serves.
type Role string

const (
	RoleClient Role = "client" // packets from local applications into tunnels
	RoleExit   Role = "exit"   // packets from tunnels out to the Internet
)

// BatchSize is the most packets the core passes in one call.
const BatchSize = 64

// Packet is one IP packet (v4 or v6) in a batch.
type Packet struct {
	Buf  []byte // storage; the packet is Buf[:N]
	N    int    // packet length in bytes
	Flow uint64 // tunnel (exit) or isolation group (client); see the package comment
}

// Config is what the core tells an adapter when it opens it: the node's
// settings, so that an adapter never keeps its own copy of them.
type Config struct {
	MTU       int            // inner MTU of a tunnel (InnerMTU)
	Addresses []netip.Prefix // addresses the adapter owns (client side)
	Exclude   []netip.Prefix // destinations that must never enter the adapter (the node's own mimic links)
	// DNS are the in-tunnel resolver addresses the node uses (empty:
	// DefaultDNS). A client adapter points its resolver at them; an exit
	// adapter answers DNS sent to them with its own resolver.
	DNS []netip.Addr
	// ExitPolicy is the policy the core enforces on every packet that
	// leaves through this exit (exit role only; nil: exitpolicy.Default).
	// An exit adapter enforces it again right before it dials, in case a
	// packet reached it some other way. Treat it as read-only.
	ExitPolicy *exitpolicy.Policy
	Options    map[string]string // the [adapter.options] table from node.toml
}

// Adapter moves whole IP packets between the core and the world.
type Adapter interface {
	Name() string
	Role() Role
	Open(cfg Config) error
	// ReadPackets blocks until at least one packet is available and
	// returns how many it filled (see the package comment).
	ReadPackets(pkts []Packet) (n int, err error)
	// WritePackets delivers packets and returns how many it accepted.
	WritePackets(pkts []Packet) (n int, err error)
	Close() error
}

// FlowCloser is implemented by adapters that keep per-flow state.
type FlowCloser interface {
	// CloseFlow forgets every mapping of one flow (its tunnel is gone).
	CloseFlow(flow uint64) error
}

// ExcludeUpdater is implemented by client adapters that route (TUN): the
// core calls it whenever the set of mimic addresses changes, so the node's
// own links never route into the tunnel.
type ExcludeUpdater interface {
	SetExclude(prefixes []netip.Prefix) error
}

// PolicyUpdater is implemented by exit adapters that enforce the exit
// policy themselves (Config.ExitPolicy): the core calls it when a reload
// (SIGHUP) changed the node's policy, so that the adapter's own check
// follows. An exit adapter that does not implement it keeps the policy it
// was opened with until the node restarts, and the reload says so. Treat
// p as read-only.
type PolicyUpdater interface {
	SetExitPolicy(p *exitpolicy.Policy) error
}

// Restarter is implemented by adapters that can lose their state while
// the node runs: an adapter in a child process is restarted when the child
// dies, and the new child knows none of the old one's flows (an exit's NAT
// mappings). Restarts counts those restarts; the core polls it and, when
// it changes, ends the flows that cannot continue (an exit resets every
// TCP flow it carried) instead of leaving them to time out.
type Restarter interface {
	Restarts() uint64
}

// Factory creates an adapter from its options.
type Factory func(options map[string]string) (Adapter, error)
