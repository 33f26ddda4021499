package simnet

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// LinkParams describe the path from one address to another.
type LinkParams struct {
	Latency time.Duration // one-way delay
	Jitter  time.Duration // extra delay, uniform in [0, Jitter)
	Loss    float64       // drop probability, 0..1
	MTU     int           // largest datagram carried; 0 = Config.MTU
}

// Config describes a network.
type Config struct {
	Seed uint64
	// Default path parameters, used when Link is nil.
	Latency time.Duration
	Jitter  time.Duration
	Loss    float64
	// MTU is the largest datagram payload carried (default 1452: a UDP
	// payload on a 1500-byte IPv6 path).
	MTU int
	// Link, when set, gives the parameters of the path src → dst.
	Link func(src, dst netip.Addr) LinkParams
	// Bandwidth is each node's uplink in bytes per second (0 = unlimited),
	// Burst the token bucket depth in bytes (default 64 KiB), and
	// MaxQueueDelay the longest a datagram waits for tokens before it is
	// dropped (default 200 ms).
	Bandwidth     float64
	Burst         float64
	MaxQueueDelay time.Duration
	// QueueLimit bounds each receiver's queue in datagrams (default 4096),
	// like a socket receive buffer.
	QueueLimit int
}

func (c *Config) setDefaults() {
	if c.MTU == 0 {
		c.MTU = 1452
	}
	if c.Burst == 0 {
		c.Burst = 64 << 10
	}
	if c.MaxQueueDelay == 0 {
		c.MaxQueueDelay = 200 * time.Millisecond
	}
	if c.QueueLimit == 0 {
		c.QueueLimit = 4096
	}
}

// Drop reasons counted by Stats.
const (
	DropLoss     = "loss"
	DropMTU      = "mtu"
	DropQueue    = "queue"
	DropNoListen = "no_listener"
	DropBuf      = "short_buffer"
)

// Stats are network-wide counters.
type Stats struct {
	Sent, Delivered, Bytes uint64
	Dropped                map[string]uint64
}

// Network connects simnet transports. It is safe for concurrent use.
type Network struct {
	cfg Config

	mu    sync.RWMutex
	ports map[netip.AddrPort]*Transport
	down  atomic.Bool // Shutdown
	seq   uint64      // transports created; seeds their generators

	sent, delivered, bytes                      atomic.Uint64
	dropLoss, dropMTU, dropQ, dropNone, dropBuf atomic.Uint64

	rec atomic.Pointer[func(Observation)] // see SetRecorder (record.go)
}

// New returns an empty network.
func New(cfg Config) *Network {
	cfg.setDefaults()
	return &Network{cfg: cfg, ports: map[netip.AddrPort]*Transport{}}
}

// Stats returns a snapshot of the counters.
func (n *Network) Stats() Stats {
	return Stats{
		Sent: n.sent.Load(), Delivered: n.delivered.Load(), Bytes: n.bytes.Load(),
		Dropped: map[string]uint64{
			DropLoss: n.dropLoss.Load(), DropMTU: n.dropMTU.Load(), DropQueue: n.dropQ.Load(),
			DropNoListen: n.dropNone.Load(), DropBuf: n.dropBuf.Load(),
		},
	}
}

// NewTransport returns an unbound transport named "sim".
func (n *Network) NewTransport() *Transport {
	n.mu.Lock()
	n.seq++
	seq := n.seq
	n.mu.Unlock()
	return &Transport{
		net:    n,
		rng:    rand.New(rand.NewPCG(n.cfg.Seed, seq)),
		tokens: n.cfg.Burst,
		notify: make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
}

var (
	errAddrInUse = errors.New("simnet: address already in use")
	errNoPort    = errors.New("simnet: listen address needs a port")
)

func (n *Network) bind(t *Transport, addr netip.AddrPort) error {
	if addr.Port() == 0 || !addr.Addr().IsValid() || addr.Addr().IsUnspecified() {
		return errNoPort
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ports[addr] != nil {
		return errAddrInUse
	}
	n.ports[addr] = t
	return nil
}

func (n *Network) unbind(addr netip.AddrPort, t *Transport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ports[addr] == t {
		delete(n.ports, addr)
	}
}

// Shutdown makes every later datagram vanish (counted as no_listener)
// without taking the port table's lock: stopping thousands of busy nodes
// one by one otherwise serialises each one's unbind behind every other
// node's sends (10,000 nodes took minutes to stop).
func (n *Network) Shutdown() { n.down.Store(true) }

func (n *Network) lookup(addr netip.AddrPort) *Transport {
	if n.down.Load() {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.ports[addr]
}

func (n *Network) params(src, dst netip.Addr) LinkParams {
	if n.cfg.Link != nil {
		p := n.cfg.Link(src, dst)
		if p.MTU == 0 {
			p.MTU = n.cfg.MTU
		}
		return p
	}
	return LinkParams{Latency: n.cfg.Latency, Jitter: n.cfg.Jitter, Loss: n.cfg.Loss, MTU: n.cfg.MTU}
}

var _ transport.Transport = (*Transport)(nil)
