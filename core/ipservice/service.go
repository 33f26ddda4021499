package ipservice

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/core/ratelog"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Options configure the IP service.
type Options struct {
	// ClientAdapter (TUN, SOCKS) feeds local applications' packets into
	// tunnels; ExitAdapter (PNAT) sends tunnel packets to servers and
	// needs an exit node (node.Options.Exit). Both optional.
	ClientAdapter adapter.Adapter
	ExitAdapter   adapter.Adapter
	// DNSAddrs are the in-tunnel resolver addresses; exits answer them
	// with their own resolver, whatever the policy says about the range.
	// Default adapter.DefaultDNS().
	DNSAddrs []netip.Addr
	// SpareTunnels are built ahead of need so a new flow gets a tunnel at
	// once. Default 1 when a client adapter is set; negative: none.
	SpareTunnels int
	// TunnelHops is the length of the tunnels built; default
	// node.DefaultTunnelHops.
	TunnelHops int
	// FairQueue is how many packets the fair queue at each tunnel entry
	// holds (fq.go); default 512. Negative: no fair queue, the adapter's
	// reader sends into the tunnel itself and waits when the engine's
	// queues are full (backpressure only, no per-flow fairness).
	FairQueue int
	// FairQueueAlways makes the fair queue's sender send as soon as it
	// can and wait in the engine when the engine's writer queue is full
	// (4,096 frames shared by every tunnel), as before D46. By
	// default the sender waits before each batch until the writer is
	// nearly idle again (fq.go), so a backlog waits in the fair queue,
	// per flow.
	FairQueueAlways bool
	// FairQueueInline lets the adapter's reader send a packet into its
	// tunnel itself while nothing is queued and the engine's writer is
	// nearly idle (no copy, no hand-off to the sender). Off by default:
	// measured end to end it made 16 flows less fair (slowest ÷ mean
	// 0.78 against 0.94) for no clear gain (D46).
	FairQueueInline bool
}

// ErrOptions wraps every option validation error.
var ErrOptions = errors.New("ipservice: invalid options")

func (o *Options) setDefaults() {
	if len(o.DNSAddrs) == 0 {
		o.DNSAddrs = adapter.DefaultDNS()
	}
	if o.SpareTunnels == 0 && o.ClientAdapter != nil {
		o.SpareTunnels = 1
	}
	if o.TunnelHops == 0 {
		o.TunnelHops = node.DefaultTunnelHops
	}
	if o.FairQueue == 0 {
		o.FairQueue = fqLimit
	}
}

// Service is the IP service of one node.
type Service struct {
	opts    Options
	n       *node.Node
	log     *slog.Logger
	limiter ratelog.Limiter

	client clientState
	exits  exitFlows
}

// New checks the options and prepares the service. Give ExitHandler to
// the node (node.Options.ExitHandler), then Start the service on it.
func New(o Options) (*Service, error) {
	o.setDefaults()
	if o.TunnelHops < 1 || o.TunnelHops > onion.MaxHops {
		return nil, fmt.Errorf("%w: TunnelHops %d out of range 1..%d", ErrOptions, o.TunnelHops, onion.MaxHops)
	}
	return &Service{opts: o}, nil
}

// ExitHandler is what the node hands the DATA reaching its last hops to
// (node.Options.ExitHandler); nil without an exit adapter.
func (s *Service) ExitHandler() node.ExitHandler {
	if s.opts.ExitAdapter == nil {
		return nil
	}
	return exitHandler{s}
}

// Start opens the adapters and starts the service's goroutines on n. Call
// it before n.Start: the node may hand DATA to the exit handler as soon as
// it runs. The goroutines end, and the adapters are closed, when n stops:
// the node owns them from now on.
func (s *Service) Start(n *node.Node) error {
	if s.opts.ExitAdapter != nil && !n.IsExit() {
		return fmt.Errorf("%w: ExitAdapter given but the node is no exit", ErrOptions)
	}
	s.n = n
	s.log = n.Logger()
	if a := s.opts.ClientAdapter; a != nil {
		if err := a.Open(adapter.Config{MTU: adapter.InnerMTU, Exclude: s.peerPrefixes(), DNS: s.opts.DNSAddrs}); err != nil {
			return fmt.Errorf("ipservice: opening the client adapter: %w", err)
		}
		s.client.writer = s.adapterWriter(a, "client-write")
	}
	if a := s.opts.ExitAdapter; a != nil {
		if err := a.Open(adapter.Config{MTU: adapter.InnerMTU, DNS: s.opts.DNSAddrs, ExitPolicy: n.ExitPolicy()}); err != nil {
			return fmt.Errorf("ipservice: opening the exit adapter: %w", err)
		}
		s.exits.writer = s.adapterWriter(a, "exit-write")
	}
	fair := s.opts.FairQueue > 0
	if s.opts.ClientAdapter != nil {
		if fair {
			s.client.fq = newFairQueue(n.Done(), s.opts.FairQueue, s.sendClient, s.dropFlowQueue)
			if !s.opts.FairQueueAlways {
				s.client.fq.room = awaitClientRoom
				// No ready (drain only wakes the sender): with the reader
				// sending inline while the engine had room, a flood left
				// the other flows 125–170 of their 200 packets in
				// TestFloodingFlowCannotStarveOthers (D65, merge note).
				if s.opts.FairQueueInline {
					s.client.fq.try = s.trySendClient
				}
			}
			n.Go(s.client.fq.run)
		}
		n.Go(s.clientLoop)
	}
	if s.opts.ExitAdapter != nil {
		if fair {
			s.exits.fq = newFairQueue(n.Done(), s.opts.FairQueue, s.sendExit, s.dropFlowQueue)
			if !s.opts.FairQueueAlways {
				s.exits.fq.room = awaitExitRoom
				// No ready, as on the client side (D65, merge note).
				if s.opts.FairQueueInline {
					s.exits.fq.try = trySendExit
				}
			}
			n.Go(s.exits.fq.run)
		}
		n.Go(s.exitLoop)
	}
	n.Go(s.closer)
	n.OnMaintain(s.maintain)
	n.OnBatchEnd(s.flushWriters)
	return nil
}

// adapterWriter batches the packets the service hands adapter a: DATA
// cells arrive one at a time from many goroutines, and across a plugin
// boundary a packet in a batch of 64 costs a tenth of one sent alone
// (D30). A full queue drops (drop_adapter) rather than stall the link
// the cell came from.
func (s *Service) adapterWriter(a adapter.Adapter, warnKey string) *adapter.Writer {
	w := adapter.NewWriter(a, 0, func(lost int, err error) {
		s.add(DropAdapter, uint64(lost))
		s.limiter.Warn(s.log, warnKey, "IP adapter refused packets", "adapter", a.Name(), "err", err)
	})
	s.n.Go(func() { w.Run(s.n.Done()) })
	return w
}

// flushWriters wakes the adapter writers for what a receive loop's batch
// queued for them (deliverClientBatch, exitData): once per batch, not
// once per packet. The receive loop does not write to the adapters
// itself: a stuck (or hostile) adapter child must fill its writer's
// queue and be dropped from (drop_adapter), not stall the links.
func (s *Service) flushWriters() {
	if w := s.client.writer; w != nil {
		w.Kick()
	}
	if w := s.exits.writer; w != nil {
		w.Kick()
	}
}

// closer closes the adapters once the node stops: their blocked reads
// return and the loops end.
func (s *Service) closer() {
	<-s.n.Done()
	for _, a := range []adapter.Adapter{s.opts.ClientAdapter, s.opts.ExitAdapter} {
		if a != nil {
			a.Close()
		}
	}
}

// maintain runs on the node's maintenance goroutine.
func (s *Service) maintain(now time.Time) {
	s.maintainClient(now)
	s.maintainExit()
}

func (s *Service) stopped() bool {
	select {
	case <-s.n.Done():
		return true
	default:
		return false
	}
}

// sleep waits d on the node's clock, or until the node stops.
func (s *Service) sleep(d time.Duration) {
	t := s.n.Clock().NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-s.n.Done():
	}
}

func (s *Service) dropFlowQueue()                { s.n.Count(DropFlowQueue, 1) }
func (s *Service) inc(name string)               { s.n.Count(name, 1) }
func (s *Service) add(name string, delta uint64) { s.n.Count(name, delta) }
