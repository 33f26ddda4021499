// Package node is Tarzan's engine: it admits peers, keeps encrypted links
// to its mimics, relays onion cells between mimic links only, builds,
// checks and repairs tunnels, and shapes every link with the cover
// policy. It knows nothing of what tunnels carry: the IP service
// (core/ipservice) and loop cover (core/loopcover) are built on its public
// tunnel API (api.go: BuildTunnelWith with TunnelEvents, Tunnel.SendData
// and SendPing, an ExitHandler at exits, Go/Done/OnMaintain/Count for
// their goroutines, timers and counters).
//
// Pipeline (who owns which goroutine and queue). Every goroutine is
// started through goRun (or Go, for the services), so Wait waits for all:
//
//  1. recvLoop (one per transport) reads frame batches from the transport
//     and demultiplexes on the clear frame type: probes and proofs go to
//     admission (admit.go), handshakes to the link code (links.go), data
//     frames are authenticated and decrypted with the session found by
//     receiver index and handed to handlePayload (relay.go, tunnel.go).
//     It also runs the services' handlers: TunnelEvents.Data and Pong for
//     a tunnel's cells, ExitHandler.ExitData for DATA at a last hop.
//  2. Anything that sends builds a link payload and calls sendPayload
//     (send.go). An unshaped link seals at once and queues the frame on
//     its endpoint's writer queue; a shaped link queues the plaintext on
//     its own bounded queue.
//  3. shapeLoop (one, cover.go) asks the cover policy for per-link rates
//     once per policy tick and, every few milliseconds, releases the
//     frames each shaped link is due: queued data first, padding otherwise.
//  4. the goroutine that ends a batch (a receive loop, or a service's
//     Cork/Uncork) writes what the batch queued itself; writeLoop (one
//     per transport) drains what is queued outside a batch, in
//     WriteBatch calls of up to transport.BatchSize frames.
//  5. maintainLoop (one, maintain.go) runs discovery proposals, probes,
//     mimic recomputation, link handshakes and rekeys, keepalives,
//     circuit and orphan expiry on the node's clock, then the services'
//     maintenance (OnMaintain).
//  6. checkLoop (one, tunnel_check.go) checks, on the node's clock, that
//     the node's own tunnels that carry traffic still deliver.
//  7. discoveryLoop (one, with a helper that cancels its context when the
//     node stops) turns the discovery plugin's blocking Next into
//     proposals for maintainLoop.
//  8. outboxLoop (one, gossip.go, with a helper that cancels its context)
//     sends the discovery backend's messages to peers.
//  9. a watcher (one) closes the node when Start's context ends.
//  10. a repair (one per tunnel being repaired, repair.go, with a helper
//     that cancels it when the node stops) rebuilds a tunnel in the
//     background; tunnel builds themselves run on their caller's
//     goroutine.
//
// The services' own goroutines are listed in their package docs.
//
// Run starts all of them and returns when its context ends, after they
// have all stopped.
package node

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/mimic"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/ratelog"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Node is one Tarzan participant: originator and relay at once.
type Node struct {
	opts Options
	id   identity.ID
	log  *slog.Logger

	builds buildStats // tunnel build and repair latencies (linkstats.go)

	eps   []*endpoint
	bound netip.AddrPort // first advertised address: the node's place in the domain hierarchy

	linkStatic link.Static
	onion      onionKeys
	spare      spareKey // the next onion handshake's ephemeral key (handshake_keys.go)

	descMu    sync.RWMutex
	desc      []byte
	descUntil time.Time

	exitPolicy atomic.Pointer[exitpolicy.Policy] // Options.ExitPolicy until SetExitPolicy (reload.go)

	view       *view.View
	mimicMu    sync.Mutex
	table      *mimic.Table
	tableAt    uint64 // view version the table was built from
	tableBuilt time.Time
	viewSeen   uint64    // newest view version mimicTable saw
	viewSeenAt time.Time // when it first saw it

	// The link table, under linkMu: links, sessions by index, probes.
	// Never held while taking mu, nor the other way round: the receive
	// path looks a session up without waiting on circuit work.
	linkMu  sync.Mutex
	links   map[identity.ID]*peerLink
	byIndex map[uint32]*peerLink // local session or pending-handshake index → link
	probes  map[[32]byte]*pendingProbe
	probing map[peerAddr]time.Time // newest probe sent to each address (by nonce in probes)

	// The circuit table, under mu: routes, relay circuits and their
	// limits, rejoin points, our own tunnels (and the close of stop).
	mu       sync.Mutex
	routes   map[circKey]route
	rejoins  map[[32]byte]*circuit // relay circuits by their next rejoin point (rejoin.go)
	circs    circuitCount          // relay circuits per link (relay_limits.go)
	tunnels  map[*Tunnel]struct{}
	rngMu    sync.Mutex
	rng      *mrand.Rand // ChaCha8 keyed from crypto/rand (New)
	proposal chan []discovery.Proposal

	stats counters
	pad   *padReader // cell padding

	started atomic.Bool
	closing atomic.Bool  // Close ran (or runs): only the first says goodbye
	writing atomic.Int32 // frames queued for a writer or being written (Close waits for them)
	corks   atomic.Int32 // batches being handled (receive loops, Cork): the last to end one writes what they made (send.go)
	stop    chan struct{}
	wg      sync.WaitGroup
	limiter ratelog.Limiter

	exitFlows   atomic.Uint64 // the last exit flow handle given out (ExitCircuit.Flow)
	tunTotals   tunnelTotals  // tunnel numbers and DATA sums (tunnelstats.go)
	batchMu     sync.Mutex
	batchEnd    []func() // services' end-of-batch work (OnBatchEnd)
	batchEndN   atomic.Int32
	maintMu     sync.Mutex
	maintainers []func(time.Time) // services' maintenance (OnMaintain)
	goMu        sync.Mutex
	goLive      bool     // Start (or Close) ran: Go starts at once
	goLater     []func() // what Go was given before

	hooks testHooks

	admission admissionGuard // per-source limits and liveness (limiter.go, liveness.go)
	wake      wakeups        // wakes the timer loops early (maintain.go)
}

// testHooks let tests in this package play a misbehaving relay.
type testHooks struct {
	relayForward func(cell []byte) // called on a forward cell before it goes to the next hop
	// extendTo, when set, decides each EXTEND: false answers it with
	// EXTEND_FAILED, as a relay steering its tunnels would (relay.go).
	extendTo atomic.Pointer[func(next identity.ID) bool]
	// keepGhosts, when set, leaves cells for unknown circuits unanswered
	// (no DESTROY(GONE)): a flooding attacker that keeps the circuits its
	// raw CREATEs made instead of letting its core free them.
	keepGhosts atomic.Bool
}

// New checks the options and prepares a node; Run starts it.
func New(opts Options) (*Node, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if !onion.HardwareAES() && !opts.AllowVariableTimeAES {
		return nil, fmt.Errorf("%w: this CPU has no AES instructions, so onion cells would be encrypted in variable time, "+
			"a timing side channel on the keys (AllowVariableTimeAES is for tests and emulators only)", ErrOptions)
	}
	n := &Node{
		opts:     opts,
		id:       opts.Identity.ID(),
		links:    map[identity.ID]*peerLink{},
		byIndex:  map[uint32]*peerLink{},
		probes:   map[[32]byte]*pendingProbe{},
		probing:  map[peerAddr]time.Time{},
		routes:   map[circKey]route{},
		tunnels:  map[*Tunnel]struct{}{},
		view:     view.New(),
		proposal: make(chan []discovery.Proposal, 16),
		stop:     make(chan struct{}),
	}
	n.log = opts.Logger.With("node", n.id.Short())
	// Circuit IDs, session indices and path choices go on the wire or
	// decide the path: a CSPRNG keyed from the operating system, never
	// from Options.Rand (which tests and the simulator seed), so no one
	// predicts them from the seed or from the draws they saw.
	var seed [32]byte
	crand.Read(seed[:]) // never fails (crypto/rand)
	n.rng = mrand.New(mrand.NewChaCha8(seed))
	var err error
	if n.pad, err = newPadReader(opts.Rand); err != nil {
		return nil, fmt.Errorf("node: reading randomness: %w", err)
	}
	if n.linkStatic, err = link.NewStatic(opts.Rand); err != nil {
		return nil, fmt.Errorf("node: creating link key: %w", err)
	}
	if err := n.onion.rotate(opts.Rand); err != nil {
		return nil, err
	}
	return n, nil
}

// ID is the node's identity.
func (n *Node) ID() identity.ID { return n.id }

// Addr is the transport address the node is bound to (after Run started).
func (n *Node) Addr() netip.AddrPort { return n.bound }

// View gives read access to the admitted peers.
func (n *Node) View() *view.View { return n.view }

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() map[string]uint64 { return n.stats.snapshot() }

// Stat returns one counter.
func (n *Node) Stat(name string) uint64 { return n.stats.get(name) }

// Descriptor is the node's current signed descriptor.
func (n *Node) Descriptor() []byte {
	n.descMu.RLock()
	defer n.descMu.RUnlock()
	return n.desc
}

// ErrStopped is returned by operations on a node that is not running.
var ErrStopped = errors.New("node: stopped")

// Start binds the transport, publishes the descriptor and starts the
// node's goroutines. They run until ctx ends or Close is called.
func (n *Node) Start(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("node: already started")
	}
	if err := n.bindEndpoints(); err != nil {
		return err
	}
	if err := n.publish(); err != nil {
		return err
	}
	if err := n.opts.Discovery.Start(n.Descriptor()); err != nil {
		return fmt.Errorf("node: starting discovery %s: %w", n.opts.Discovery.Name(), err)
	}
	n.log.Info("node started", "addr", n.bound, "transports", n.TransportNames(), "discovery", n.opts.Discovery.Name())
	for _, ep := range n.eps {
		ep := ep
		n.goRun(func() { n.recvLoop(ep) })
		n.goRun(func() { n.writeLoop(ep) })
	}
	n.goRun(n.maintainLoop)
	n.goRun(n.shapeLoop)
	n.goRun(n.checkLoop)
	n.goRun(func() { n.discoveryLoop(ctx) })
	n.goRun(func() { n.outboxLoop(ctx) })
	n.goRun(func() {
		select {
		case <-ctx.Done():
			n.Close()
		case <-n.stop:
		}
	})
	n.goRelease() // the services' goroutines, now that the engine runs
	return nil
}

// Run starts the node and blocks until ctx ends; it then stops everything.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-n.stop
	n.wg.Wait()
	return nil
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops the node. A running node first tears down every circuit it
// holds both ways and each of its tunnels (DESTROY; lifecycle.go,
// goodbye) and waits, at most 500 ms, for those frames to leave: its
// neighbours learn at once instead of after the link timeout. Then it
// closes the plugins it was given (the node owns them once started); its
// goroutines and the services' (Go) end once Done is closed (Wait waits
// for them). A second or concurrent Close returns at once.
func (n *Node) Close() error {
	if !n.closing.CompareAndSwap(false, true) {
		return nil
	}
	if n.started.Load() {
		n.goodbye()
	}
	n.mu.Lock()
	select {
	case <-n.stop:
		n.mu.Unlock()
		return nil
	default:
		close(n.stop)
	}
	n.mu.Unlock()
	n.goRelease() // a node closed before it started: they see Done and end
	n.opts.Discovery.Close()
	for _, spec := range n.opts.Transports {
		spec.Transport.Close()
	}
	if n.opts.Cover != nil {
		n.opts.Cover.Close()
	}
	return nil
}

// Wait blocks until every goroutine of a closed node has returned.
func (n *Node) Wait() { n.wg.Wait() }

func (n *Node) stopped() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// publish signs a fresh descriptor with the current keys.
func (n *Node) publish() error {
	now := n.opts.Clock.Now()
	d := &descriptor.Descriptor{
		LinkKey:   n.linkStatic.Public,
		OnionKey:  n.onion.public(),
		Exit:      n.opts.Exit,
		Published: now,
		Expires:   now.Add(n.opts.DescriptorLifetime),
	}
	if n.opts.Exit {
		d.ExitPolicy = n.ExitPolicy().Summary()
	}
	for _, ep := range n.eps {
		params := ""
		if pp, ok := ep.tr.(transport.ParamsProvider); ok {
			params = pp.Params()
		}
		for _, a := range ep.advertise {
			d.Addrs = append(d.Addrs, descriptor.Addr{Transport: ep.name, AddrPort: a, Params: params})
		}
	}
	b, err := d.Sign(n.opts.Identity)
	if err != nil {
		return fmt.Errorf("node: signing descriptor: %w", err)
	}
	n.descMu.Lock()
	n.desc = b
	n.descUntil = d.Expires
	n.descMu.Unlock()
	return nil
}

func (n *Node) randUint32() uint32 {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Uint32()
}

func (n *Node) randUint64() uint64 {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Uint64()
}

func (n *Node) randIntN(k int) int {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.IntN(k)
}

// discoveryLoop turns the discovery plugin's blocking Next into proposals
// for the maintenance loop, backing off when the plugin is unavailable.
func (n *Node) discoveryLoop(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 50 * time.Millisecond
	for !n.stopped() {
		props, err := n.opts.Discovery.Next(ctx)
		if err != nil {
			if n.stopped() || errors.Is(err, discovery.ErrClosed) || ctx.Err() != nil {
				return
			}
			n.limiter.Warn(n.log, "discovery", "discovery plugin failed; retrying", "plugin", n.opts.Discovery.Name(), "err", err)
			n.sleep(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		select {
		case n.proposal <- props:
		case <-n.stop:
			return
		}
	}
}

func (n *Node) sleep(d time.Duration) {
	t := n.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-n.stop:
	}
}

// isTransient reports transport errors worth retrying.
func isTransient(err error) bool { return errors.Is(err, transport.ErrUnavailable) }
