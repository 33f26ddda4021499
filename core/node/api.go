package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/tarzan-net/tarzan/core/clock"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// The public tunnel API: what services built on the engine use (the IP
// service in core/ipservice, loop cover in core/loopcover). The engine
// knows nothing of what a tunnel carries: a service builds a tunnel with
// a constraint on its last hop and the handlers of what comes back
// (TunnelSpec), sends on it (Tunnel.SendData, Tunnel.SendPing), and at an
// exit receives the DATA that reaches a last hop through an ExitHandler
// (Options.ExitHandler). Everything a service runs lives and ends with
// the node (Go, Done, OnMaintain).

// TunnelSpec says what tunnel BuildTunnelWith builds.
type TunnelSpec struct {
	// Hops is the tunnel's length, 1..onion.MaxHops; repairs restore it.
	Hops int
	// Last, when set, is a constraint on the last hop (an exit whose
	// published policy accepts a destination, say). Repairs keep it.
	Last func(*view.Peer) bool
	// Avoid are members no hop may be, now or after a repair.
	Avoid []identity.ID
	// Events receive what the tunnel's hops send back. They are set
	// before the first cell leaves, so none is missed.
	Events TunnelEvents
}

// TunnelEvents are a tunnel's handlers; each may be nil. They run on the
// node's receive goroutine (Data, Pong) or on whichever goroutine closes
// or repairs the tunnel (ExitLost): they must not block.
type TunnelEvents struct {
	// Data receives the packet of every DATA cell from the last hop. pkt
	// is only valid during the call.
	Data func(pkt []byte)
	// ExitLost is called when nothing through the tunnel's exit can
	// continue: the tunnel closed, or a repair gave it a new exit (a
	// rebuild on a fresh path). A keep-exit repair does not call it.
	ExitLost func()
	// Pong receives every PONG that no Tunnel.Ping and no tunnel check
	// waits for: the replies to the service's own SendPing.
	Pong func(id, nonce uint64, at time.Time)
}

// BuildTunnelWith selects a path for spec and builds a tunnel along it,
// retrying with another path when a hop fails. It fails with ErrNoPath
// when no path meets the constraints.
func (n *Node) BuildTunnelWith(ctx context.Context, spec TunnelSpec) (*Tunnel, error) {
	start := n.opts.Clock.Now()
	t, err := n.buildTunnel(ctx, spec.Hops, spec.Last, spec.Avoid, &spec.Events)
	return n.noteBuild(start, t, err) // linkstats.go
}

// SendPing sends a PING with the caller's id and nonce to hop (0-based):
// its PONG goes to TunnelEvents.Pong unless a Ping waits for that id. On
// the wire it is the body of Tunnel.Ping, so no hop tells the two apart.
func (t *Tunnel) SendPing(hop int, id, nonce uint64) error {
	return t.send(hop, onion.CmdPing, onion.EncodePing(id, nonce))
}

// Len is the number of hops the tunnel has now (fewer during a repair).
func (t *Tunnel) Len() int { return t.path.Len() }

// Closed reports whether the tunnel is gone for good.
func (t *Tunnel) Closed() bool { return t.isClosed() }

// Repairing reports whether a repair of the tunnel is under way; it then
// may have no last hop to send to.
func (t *Tunnel) Repairing() bool { return t.isRepairing() }

// HopIDs are the IDs of the tunnel's hops, first hop first.
func (t *Tunnel) HopIDs() []identity.ID { return t.hopIDs() }

// Exit is the tunnel's last hop: during a keep-exit repair still the exit
// set aside, nil while a rebuild on a fresh path has none yet.
func (t *Tunnel) Exit() *view.Peer { return t.exitPeer() }

// LastUse is when the tunnel last sent or received DATA.
func (t *Tunnel) LastUse() time.Time { return t.lastUse() }

// ExitHandler receives, at an exit (Options.Exit), the DATA cells that
// reach this node as a tunnel's last hop, and the end of the circuits
// that carried them. Its methods run on the node's goroutines and must
// not block.
type ExitHandler interface {
	// ExitData handles the packet of one DATA cell; pkt is only valid
	// during the call. Reply on c.
	ExitData(c ExitCircuit, pkt []byte)
	// ExitClosed says the circuit whose ExitCircuit.Flow was flow is torn
	// down: its state can go.
	ExitClosed(flow uint64)
}

// ExitCircuit is the handle an ExitHandler gets of a circuit that ends at
// this node.
type ExitCircuit struct {
	n *Node
	c *circuit
}

// Flow is the circuit's exit flow handle, nonzero and unique in the node;
// the first call assigns it. A circuit that has one is kept for a rejoin
// when its previous hop is lost (rejoin.go), and ExitClosed reports its
// end.
func (e ExitCircuit) Flow() uint64 {
	flow := e.c.exitFlow.Load()
	if flow != 0 {
		return flow
	}
	flow = e.n.exitFlows.Add(1)
	if e.c.exitFlow.CompareAndSwap(0, flow) {
		return flow
	}
	return e.c.exitFlow.Load()
}

// Reply sends pkt back toward the tunnel's initiator as a DATA cell.
func (e ExitCircuit) Reply(pkt []byte) {
	e.n.countExitOut(len(pkt)) // tunnelstats.go
	e.n.originate(e.c, onion.CmdData, pkt)
}

// exitData hands a DATA cell addressed to this hop to the exit handler.
func (n *Node) exitData(c *circuit, pkt []byte) {
	h := n.opts.ExitHandler
	if !n.opts.Exit || h == nil {
		n.stats.inc(DropNoExit)
		return
	}
	n.countExitIn(len(pkt)) // tunnelstats.go
	h.ExitData(ExitCircuit{n: n, c: c}, pkt)
}

// closeExitFlow tells the exit handler that a circuit with exit state is
// torn down.
func (n *Node) closeExitFlow(c *circuit) {
	h := n.opts.ExitHandler
	if h == nil {
		return
	}
	if flow := c.exitFlow.Swap(0); flow != 0 {
		h.ExitClosed(flow)
	}
}

// Go runs f on a goroutine the node waits for (Wait): services run their
// goroutines under the node's lifetime. f must return once Done is closed.
// Before the node starts, f waits: it begins when Start has bound the
// transports and started the engine, or when Close runs first.
func (n *Node) Go(f func()) {
	n.goMu.Lock()
	if !n.goLive {
		n.goLater = append(n.goLater, f)
		n.goMu.Unlock()
		return
	}
	n.goMu.Unlock()
	n.goRun(f)
}

// goRelease starts the goroutines Go held back until the node ran.
func (n *Node) goRelease() {
	n.goMu.Lock()
	later := n.goLater
	n.goLater, n.goLive = nil, true
	n.goMu.Unlock()
	for _, f := range later {
		n.goRun(f)
	}
}

// Done is closed when the node stops (Close, or the end of Run's context).
func (n *Node) Done() <-chan struct{} { return n.stop }

// Clock is the node's clock (Options.Clock): services time themselves on
// it, so a virtual clock drives them too.
func (n *Node) Clock() clock.Clock { return n.opts.Clock }

// Logger is the node's logger, tagged with its short ID.
func (n *Node) Logger() *slog.Logger { return n.log }

// IsExit reports whether the node is an exit (Options.Exit).
func (n *Node) IsExit() bool { return n.opts.Exit }

// ExitPolicy is the policy the node publishes and enforces as an exit
// (Options.ExitPolicy, exitpolicy.Default when none was given, until
// SetExitPolicy replaces it).
func (n *Node) ExitPolicy() *exitpolicy.Policy {
	if p := n.exitPolicy.Load(); p != nil {
		return p
	}
	return n.opts.ExitPolicy
}

// Count adds delta to the named counter of the node's set (Stats,
// Status.Counters). Services count there so that one snapshot holds every
// drop and event of the node.
func (n *Node) Count(name string, delta uint64) { n.stats.add(name, delta) }

// OnMaintain adds f to what the maintenance goroutine runs every
// Options.MaintenanceInterval (every 2 s on a settled node),
// after the engine's own work.
func (n *Node) OnMaintain(f func(now time.Time)) {
	n.maintMu.Lock()
	n.maintainers = append(n.maintainers, f)
	n.maintMu.Unlock()
}

// runMaintainers runs the services' maintenance.
func (n *Node) runMaintainers(now time.Time) {
	n.maintMu.Lock()
	fs := n.maintainers
	n.maintMu.Unlock()
	for _, f := range fs {
		f(now)
	}
}

// TunnelIdleTimeout is Options.TunnelIdleTimeout: services retire their
// own idle tunnels after it, as relays expire idle circuits.
func (n *Node) TunnelIdleTimeout() time.Duration { return n.opts.TunnelIdleTimeout }
