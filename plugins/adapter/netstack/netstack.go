package netstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/stackgroup"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Name is the adapter's name.
const Name = "netstack"

// ErrNotOpen is returned by dials before the core opened the adapter.
var ErrNotOpen = errors.New("netstack: adapter not open yet (the node has not started)")

var _ adapter.Factory = New

// Adapter is the in-process client adapter.
type Adapter struct {
	opts options
	log  *slog.Logger

	reader *stackgroup.Reader // ReadPackets: every group's stack's packets

	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	opened   bool
	groups   map[string]*group // by isolation key; "" is the default group
	flows    map[uint64]*group
	nextFlow uint64
}

// New returns an unopened adapter; it is an adapter.Factory. Unknown
// option keys are rejected.
func New(options map[string]string) (adapter.Adapter, error) {
	a, err := NewAdapter(options)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// NewAdapter is New with the concrete type, for callers that dial.
func NewAdapter(options map[string]string) (*Adapter, error) {
	o, err := parseOptions(options)
	if err != nil {
		return nil, err
	}
	closed := make(chan struct{})
	return &Adapter{
		opts: o, log: slog.Default().With("adapter", Name),
		reader: stackgroup.NewReader(closed), closed: closed,
		groups: map[string]*group{}, flows: map[uint64]*group{}, nextFlow: 1,
	}, nil
}

// SetLogger sets the logger (before Open).
func (a *Adapter) SetLogger(l *slog.Logger) {
	if l != nil {
		a.log = l.With("adapter", Name)
	}
}

// Name returns "netstack".
func (a *Adapter) Name() string { return Name }

// Role returns adapter.RoleClient.
func (a *Adapter) Role() adapter.Role { return adapter.RoleClient }

// Open takes the core's MTU and addresses unless options set them.
func (a *Adapter) Open(cfg adapter.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.closed:
		return adapter.ErrClosed
	default:
	}
	if a.opened {
		return errors.New("netstack: already open")
	}
	if !a.opts.mtuSet && cfg.MTU > 0 {
		if cfg.MTU < 1280 {
			return fmt.Errorf("netstack: Config.MTU %d is below 1280", cfg.MTU)
		}
		a.opts.mtu = cfg.MTU
	}
	if !a.opts.addressSet && len(cfg.Addresses) > 0 {
		a.opts.addresses = a.opts.addresses[:0]
		for _, pf := range cfg.Addresses {
			a.opts.addresses = append(a.opts.addresses, pf.Addr())
		}
	}
	if !a.opts.dnsSet && len(cfg.DNS) > 0 {
		a.opts.dns = append([]netip.Addr(nil), cfg.DNS...) // the node's in-tunnel resolver addresses
	}
	a.opened = true
	return nil
}

// ReadPackets blocks for the first packet any group's stack emits, then
// takes whatever else is already queued. A packet larger than the
// caller's buffer is dropped.
func (a *Adapter) ReadPackets(pkts []adapter.Packet) (int, error) {
	return a.reader.Read(pkts)
}

// WritePackets delivers each packet to the stack of its Flow. Packets for
// groups that no longer exist, and anything that is not IPv4 or IPv6, are
// dropped but counted as accepted: like a network, the adapter loses
// packets rather than failing the batch.
func (a *Adapter) WritePackets(pkts []adapter.Packet) (int, error) {
	select {
	case <-a.closed:
		return 0, adapter.ErrClosed
	default:
	}
	for _, pk := range pkts {
		if pk.N <= 0 || pk.N > len(pk.Buf) {
			continue
		}
		b := pk.Buf[:pk.N]
		if v := b[0] >> 4; v != 4 && v != 6 {
			continue
		}
		a.mu.Lock()
		g := a.flows[pk.Flow]
		a.mu.Unlock()
		if g != nil {
			g.Write([][]byte{b})
		}
	}
	return len(pkts), nil
}

// Close ends every connection and stack and waits for their goroutines.
// It is idempotent.
func (a *Adapter) Close() error {
	a.once.Do(func() {
		close(a.closed)
		a.mu.Lock()
		groups := a.groups
		a.groups, a.flows = map[string]*group{}, map[uint64]*group{}
		a.mu.Unlock()
		for _, g := range groups {
			g.Close()
		}
	})
	return nil
}

// DialContext connects through the default isolation group (Flow 0); see
// Group.DialContext.
func (a *Adapter) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	g, err := a.acquire("")
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	defer a.release(g)
	return g.dial(ctx, network, address)
}

// Group is a handle on one isolation group: connections dialed through
// it share tunnels with each other and with no other group.
type Group struct {
	a    *Adapter
	g    *group
	once sync.Once
}

// Group opens the isolation group named key, or joins it if another
// holder has it open. key "" is the default group of DialContext. Close
// the handle when done: the group's stack (and every connection still
// open in it) goes when its last handle closes.
func (a *Adapter) Group(key string) (*Group, error) {
	g, err := a.acquire(key)
	if err != nil {
		return nil, err
	}
	return &Group{a: a, g: g}, nil
}

// Flow returns the group's Flow number (0 for the default group).
func (h *Group) Flow() uint64 { return h.g.Flow }

// DialContext connects to address through the group's stack. network is
// "tcp", "tcp4", "tcp6", "udp", "udp4" or "udp6"; address is "host:port",
// where a host name is resolved at the exit (see the package comment).
// Addresses are tried IPv4 first, each with a fair share of ctx's time.
func (h *Group) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return h.g.dial(ctx, network, address)
}

// Close releases the handle; the last one closes the group. Idempotent.
func (h *Group) Close() error {
	h.once.Do(func() { h.a.release(h.g) })
	return nil
}

// acquire returns the group for key, creating it if needed, and holds a
// reference until release.
func (a *Adapter) acquire(key string) (*group, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.closed:
		return nil, adapter.ErrClosed
	default:
	}
	if !a.opened {
		return nil, ErrNotOpen
	}
	g := a.groups[key]
	if g == nil {
		flow := uint64(0)
		if key != "" {
			flow = a.nextFlow
			a.nextFlow++
		}
		var err error
		if g, err = newGroup(a.reader, flow, a.opts); err != nil {
			return nil, err
		}
		a.groups[key], a.flows[flow] = g, g
		a.log.Debug("isolation group opened", "flow", flow)
	}
	g.refs++
	return g, nil
}

// release drops a reference; a named group without references closes.
// The default group stays until Close: it is cheap, and reopening it for
// every dial would cost each dial a new stack and a new tunnel.
func (a *Adapter) release(g *group) {
	a.mu.Lock()
	g.refs--
	last := g.refs == 0 && g.Flow != 0 && a.flows[g.Flow] == g
	if last {
		for k, x := range a.groups {
			if x == g {
				delete(a.groups, k)
			}
		}
		delete(a.flows, g.Flow)
	}
	a.mu.Unlock()
	if last {
		a.log.Debug("isolation group closed", "flow", g.Flow)
		g.Close()
	}
}

// groupCount returns the number of open isolation groups (for tests).
func (a *Adapter) groupCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.groups)
}
