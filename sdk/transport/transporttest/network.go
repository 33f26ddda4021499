package transporttest

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// queueLimit is how many datagrams a mem transport buffers before it drops,
// like a socket's receive buffer.
const queueLimit = 4096

// firstPort is where automatic port assignment starts.
const firstPort = 20000

// Network connects mem transports. It is safe for concurrent use.
type Network struct {
	latency time.Duration
	loss    float64

	mu    sync.Mutex
	rng   *rand.Rand
	ports map[netip.AddrPort]*memTransport
	next  uint16

	dropped atomic.Uint64
}

// Option configures a Network.
type Option func(*Network)

// WithLatency delays every datagram by d.
func WithLatency(d time.Duration) Option { return func(n *Network) { n.latency = d } }

// WithLoss drops each datagram with probability p (0 ≤ p ≤ 1).
func WithLoss(p float64) Option { return func(n *Network) { n.loss = p } }

// WithSeed makes loss reproducible.
func WithSeed(seed int64) Option {
	return func(n *Network) { n.rng = rand.New(rand.NewPCG(uint64(seed), 0)) }
}

// NewNetwork returns an empty network.
func NewNetwork(opts ...Option) *Network {
	n := &Network{ports: make(map[netip.AddrPort]*memTransport), next: firstPort,
		rng: rand.New(rand.NewPCG(rand.Uint64(), 0))}
	for _, o := range opts {
		o(n)
	}
	return n
}

// NewTransport returns an unbound transport named "mem" on n.
func (n *Network) NewTransport() transport.Transport {
	return &memTransport{net: n, notify: make(chan struct{}, 1), closed: make(chan struct{})}
}

// Dropped counts datagrams lost to WithLoss, sent to an address nobody
// listens on, overflowing a receive queue, or larger than the reader's Buf.
func (n *Network) Dropped() uint64 { return n.dropped.Load() }

func (n *Network) bind(t *memTransport, addr netip.AddrPort) (netip.AddrPort, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		for i := 0; ; i++ {
			if i == 65535-firstPort {
				return addr, errPortsExhausted
			}
			cand := netip.AddrPortFrom(addr.Addr(), n.next)
			if n.next++; n.next == 0 {
				n.next = firstPort
			}
			if n.ports[cand] == nil {
				addr = cand
				break
			}
		}
	}
	if n.ports[addr] != nil {
		return addr, errAddrInUse
	}
	n.ports[addr] = t
	return addr, nil
}

func (n *Network) unbind(addr netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ports, addr)
}

// route finds the listener for dst (a wildcard listener matches any
// address on its port) and decides loss.
func (n *Network) route(dst netip.AddrPort) *memTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.loss > 0 && n.rng.Float64() < n.loss {
		return nil
	}
	if t := n.ports[dst]; t != nil {
		return t
	}
	for _, any := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		if t := n.ports[netip.AddrPortFrom(any, dst.Port())]; t != nil {
			return t
		}
	}
	return nil
}
