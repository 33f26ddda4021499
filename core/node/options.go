package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/clock"
	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/mimic"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Options configure a node. The core takes typed options only; node.toml is
// parsed elsewhere (package config) and turned into these.
type Options struct {
	Identity *identity.Identity // required
	// Transports in preference order: with each mimic the node uses the
	// first of its transports the mimic's descriptor also advertises.
	// Every one is advertised. At least one is required.
	Transports []TransportSpec
	// Transport, Listen and Advertise are a shorthand for a single
	// transport; when Transport is set it is used as the first one.
	Transport transport.Transport
	Listen    netip.AddrPort
	Advertise []netip.AddrPort
	Discovery discovery.Discovery // required
	Cover     cover.Policy        // nil means no shaping (like the "none" policy)

	// ExitHandler receives the DATA cells that reach this node as a
	// tunnel's last hop when Exit is set (the IP service's exit side,
	// core/ipservice); without one they are dropped (drop_data_no_exit).
	ExitHandler ExitHandler
	// ExitPolicy is the policy an exit publishes (its summary goes into
	// the descriptor) and its ExitHandler enforces; nil means
	// exitpolicy.Default (no loopback, private, link-local or multicast
	// destinations).
	ExitPolicy *exitpolicy.Policy

	MimicCount  int           // k; default DefaultMimicCount
	EpochLength time.Duration // default 24 h
	Exit        bool

	// DescriptorLifetime is how long a published descriptor is valid; the
	// node re-signs at half of it. Default 3 h.
	DescriptorLifetime time.Duration
	// TunnelIdleTimeout tears down circuits that carried nothing for this
	// long. Default 10 min.
	TunnelIdleTimeout time.Duration
	// LinkTimeout drops a link that received nothing for this long. Default 30 s.
	LinkTimeout time.Duration
	// OrphanGrace is how long an exit keeps a last-hop circuit and its
	// exit flow after losing the circuit's previous hop, so that the
	// initiator can rejoin it through a repaired path (rejoin.go).
	// Default 30 s; negative disables orphans (the circuit goes at once).
	OrphanGrace time.Duration
	// KeepaliveInterval sends a keepalive on a link that sent nothing for
	// this long. Default LinkTimeout/3 (10 s): the peer then misses two
	// before it drops the link. A transport plugin that restarts gets a
	// keepalive on each of its links at once (maintain.go), which re-opens
	// the sessions a restarted KCP or DTLS plugin lost.
	KeepaliveInterval time.Duration
	// MaintenanceInterval is how often the node reconciles links, probes
	// and timers while any is in flux; a settled node does it at most
	// every second (maintain.go). Default 250 ms.
	MaintenanceInterval time.Duration
	// QueueLength bounds each link's shaped send queue. Default 1024 frames.
	QueueLength int
	// AllowVariableTimeAES lets a node start on a CPU without AES
	// instructions (onion.HardwareAES), where Go's AES runs in variable
	// time and leaks key bits through timing. For tests and emulators
	// only; default false, and New refuses to start without it there.
	AllowVariableTimeAES bool
	// MaxCircuitsPerLink bounds the relay circuits one mimic link holds
	// open at this node (CREATEs it sent that were accepted and not yet
	// torn down); MaxCircuits bounds them over all links. A CREATE past
	// either limit is refused before any public-key work, answered with
	// DESTROY (reason resources) and counted (drop_create_limit). The
	// per-link bound keeps one mimic from taking the whole node's share.
	// Defaults DefaultMaxCircuitsPerLink and DefaultMaxCircuits; want
	// 1 <= MaxCircuitsPerLink <= MaxCircuits <= MaxCircuitsLimit.
	MaxCircuitsPerLink int
	MaxCircuits        int
	// CreateRate bounds the tunnel handshakes one mimic link can make
	// this node do, in CREATEs per second with bursts of twice as many (a
	// token bucket checked before any key work): without it a mimic that
	// opens and closes circuits in turn costs us a key agreement per
	// frame while the circuit limits are never reached. A CREATE over it
	// is refused like one over the circuit limits and counted
	// (drop_create_rate). Default DefaultCreateRate; at most MaxCreateRate.
	CreateRate float64

	// End-to-end check of tunnels that carry traffic (tunnel_check.go).
	// When DATA sent on one of our tunnels has had no cell from its exit
	// for TunnelQuiet, or a download from the exit stopped for
	// TunnelQuiet, the node pings every hop of the tunnel and repairs it
	// from the first hop that does not answer within TunnelCheckTimeout.
	// Defaults DefaultTunnelQuiet and DefaultTunnelCheckTimeout; each at
	// least MinTunnelCheck.
	TunnelQuiet        time.Duration
	TunnelCheckTimeout time.Duration

	// Per-source limits on probes and handshakes, and eviction of silent
	// peers (options_member.go).
	AdmissionLimits

	// Simulation hooks, all off by default: a simulator that runs
	// thousands of nodes in one process shares immutable work between
	// them, where a real deployment computes it once per node.
	//
	// MimicTable, when set, is called instead of mimic.NewTable and must
	// return what NewTable would (e.g. one table shared by every node
	// whose view is the same member set).
	MimicTable func(members []mimic.Member, epoch uint64, k int) *mimic.Table
	// ParseDescriptor, when set, is called instead of descriptor.Parse and
	// must make the same checks, validity at now included (e.g. a cache of
	// descriptors whose signature was verified once: they are immutable).
	ParseDescriptor func(b []byte, now time.Time) (*descriptor.Descriptor, error)
	// MimicRebuildInterval bounds how often view changes rebuild the
	// mimic table: while the view keeps changing, a table younger than
	// this is kept; once the view has not changed for MimicSettleTime,
	// or the epoch turns, the table is rebuilt. 0 rebuilds on every
	// change.
	MimicRebuildInterval time.Duration
	// MimicSettleTime is how long the view must stay unchanged to count
	// as settled (default two maintenance intervals). A simulator whose
	// nodes admit peers in bursts a few rounds apart raises it so that a
	// growing view is not taken for a settled one.
	MimicSettleTime time.Duration

	// Tap, when set, shows this node's link payloads to its operator and
	// lets the operator change them (tap.go): the red-team harness builds
	// hostile nodes with it. Nil in every real deployment.
	Tap *Tap

	Clock  clock.Clock  // default clock.Real
	Rand   io.Reader    // default crypto/rand
	Logger *slog.Logger // default slog.Default
}

// Tunnel check defaults and floor (Options.TunnelQuiet,
// TunnelCheckTimeout). The check starts 1 to 1.5 Quiet after traffic
// stopped and gives up CheckTimeout later: with the defaults a black-holed
// tunnel is found 3.5 to 4.5 s after its last cell, well before a link
// timeout (30 s) would notice anything, and a healthy round trip through
// three hops has over a second to come back.
const (
	DefaultTunnelQuiet        = 2 * time.Second
	DefaultTunnelCheckTimeout = 1500 * time.Millisecond
	MinTunnelCheck            = 100 * time.Millisecond
)

// DefaultOrphanGrace is Options.OrphanGrace's default: longer than the
// tunnel check takes to find a dead hop and repair around it (about 5 s)
// with room for a slow rebuild, short enough that an exit does not hold
// the state of tunnels nobody will rejoin.
const DefaultOrphanGrace = 30 * time.Second

// Circuit limits (Options.MaxCircuitsPerLink, MaxCircuits). A relay
// circuit costs about 1 KiB, so the default node-wide bound holds about
// 16 MiB; MaxCircuitsLimit keeps a typo from removing the bound.
const (
	DefaultMaxCircuitsPerLink = 1024
	DefaultMaxCircuits        = 16384
	MaxCircuitsLimit          = 1 << 20

	// A tunnel handshake costs a relay about 0.15 ms of CPU: 64 a second
	// are 1% of a core per link, and far more than an honest link needs.
	DefaultCreateRate = 64
	MaxCreateRate     = 1e6
)

// TransportSpec is one transport of a node.
type TransportSpec struct {
	Transport transport.Transport // unbound: the node calls Listen
	Listen    netip.AddrPort
	// Advertise are the addresses put in the descriptor; empty means the
	// bound address (which must then be a specified address).
	Advertise []netip.AddrPort
}

func (o *Options) setDefaults() {
	if o.Transport != nil {
		o.Transports = append([]TransportSpec{{Transport: o.Transport, Listen: o.Listen, Advertise: o.Advertise}}, o.Transports...)
		o.Transport = nil
	}
	if o.MimicCount == 0 {
		o.MimicCount = DefaultMimicCount
	}
	if o.EpochLength == 0 {
		o.EpochLength = 24 * time.Hour
	}
	if o.DescriptorLifetime == 0 {
		o.DescriptorLifetime = 3 * time.Hour
	}
	if o.TunnelIdleTimeout == 0 {
		o.TunnelIdleTimeout = 10 * time.Minute
	}
	if o.OrphanGrace == 0 {
		o.OrphanGrace = DefaultOrphanGrace
	}
	if o.LinkTimeout == 0 {
		o.LinkTimeout = 30 * time.Second
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = o.LinkTimeout / 3
	}
	if o.MaintenanceInterval == 0 {
		o.MaintenanceInterval = 250 * time.Millisecond
	}
	if o.QueueLength == 0 {
		o.QueueLength = 1024
	}
	if o.MaxCircuits == 0 {
		o.MaxCircuits = DefaultMaxCircuits
	}
	if o.MaxCircuitsPerLink == 0 {
		o.MaxCircuitsPerLink = min(DefaultMaxCircuitsPerLink, max(o.MaxCircuits, 1))
	}
	if o.CreateRate == 0 {
		o.CreateRate = DefaultCreateRate
	}
	if o.TunnelQuiet == 0 {
		o.TunnelQuiet = DefaultTunnelQuiet
	}
	if o.TunnelCheckTimeout == 0 {
		o.TunnelCheckTimeout = DefaultTunnelCheckTimeout
	}
	if o.ExitPolicy == nil {
		o.ExitPolicy = exitpolicy.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.MimicTable == nil {
		o.MimicTable = mimic.NewTable
	}
	if o.ParseDescriptor == nil {
		o.ParseDescriptor = descriptor.Parse
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.AdmissionLimits.setDefaults()
}

// ErrOptions wraps every option validation error.
var ErrOptions = errors.New("node: invalid options")

func (o *Options) validate() error {
	switch {
	case o.Identity == nil:
		return fmt.Errorf("%w: Identity is required", ErrOptions)
	case len(o.Transports) == 0:
		return fmt.Errorf("%w: a transport is required", ErrOptions)
	case o.Discovery == nil:
		return fmt.Errorf("%w: Discovery is required", ErrOptions)
	case o.MimicCount < 1 || o.MimicCount > 32:
		return fmt.Errorf("%w: MimicCount %d out of range 1..32", ErrOptions, o.MimicCount)
	case o.EpochLength < time.Second:
		return fmt.Errorf("%w: EpochLength %v is shorter than 1s", ErrOptions, o.EpochLength)
	case o.MimicRebuildInterval < 0:
		return fmt.Errorf("%w: MimicRebuildInterval %v is negative", ErrOptions, o.MimicRebuildInterval)
	case o.MimicSettleTime < 0:
		return fmt.Errorf("%w: MimicSettleTime %v is negative", ErrOptions, o.MimicSettleTime)
	case o.MaxCircuitsPerLink < 1 || o.MaxCircuitsPerLink > MaxCircuitsLimit:
		return fmt.Errorf("%w: MaxCircuitsPerLink %d out of range 1..%d", ErrOptions, o.MaxCircuitsPerLink, MaxCircuitsLimit)
	case o.MaxCircuits < o.MaxCircuitsPerLink || o.MaxCircuits > MaxCircuitsLimit:
		return fmt.Errorf("%w: MaxCircuits %d out of range MaxCircuitsPerLink (%d)..%d", ErrOptions, o.MaxCircuits, o.MaxCircuitsPerLink, MaxCircuitsLimit)
	case !(o.CreateRate > 0 && o.CreateRate <= MaxCreateRate):
		return fmt.Errorf("%w: CreateRate %v out of range (0, %v]", ErrOptions, o.CreateRate, float64(MaxCreateRate))
	case o.TunnelQuiet < MinTunnelCheck:
		return fmt.Errorf("%w: TunnelQuiet %v is shorter than %v (gaps between ordinary cells would start checks)", ErrOptions, o.TunnelQuiet, MinTunnelCheck)
	case o.TunnelCheckTimeout < MinTunnelCheck:
		return fmt.Errorf("%w: TunnelCheckTimeout %v is shorter than %v (healthy hops would be taken for lost)", ErrOptions, o.TunnelCheckTimeout, MinTunnelCheck)
	}
	names := map[string]bool{}
	for i, t := range o.Transports {
		switch {
		case t.Transport == nil:
			return fmt.Errorf("%w: transport %d is nil", ErrOptions, i+1)
		case !t.Listen.IsValid():
			return fmt.Errorf("%w: transport %s has no listen address", ErrOptions, t.Transport.Name())
		case names[t.Transport.Name()]:
			return fmt.Errorf("%w: transport %s given twice", ErrOptions, t.Transport.Name())
		}
		names[t.Transport.Name()] = true
	}
	if err := o.validateMember(); err != nil {
		return err
	}
	return nil
}
