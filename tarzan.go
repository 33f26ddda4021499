package tarzan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/plugins/adapter/netstack"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// ErrClosed is returned by dials on a node that was closed or stopped.
var ErrClosed = errors.New("tarzan: node closed")

// ErrNotAllowed is wrapped by dials to destinations that mean nothing
// through a tunnel: loopback, unspecified, multicast, link-local or
// broadcast addresses, also when a name resolves to one.
var ErrNotAllowed = netstack.ErrNotAllowed

// ErrUnreachable is wrapped by dials answered with ICMP unreachable: the
// node could not build a tunnel to an exit whose policy accepts the
// destination, or the exit (or a router beyond it) could not reach it.
var ErrUnreachable = netstack.ErrUnreachable

// Node is a Tarzan node running inside this process. Its methods are safe
// for concurrent use.
type Node struct {
	h    *host.Host
	ad   *netstack.Adapter
	hops int

	def   *Client       // the default isolation group
	fresh atomic.Uint64 // NewIsolated's groups so far

	closeOnce sync.Once
	closeErr  error
}

// Start starts a node from o. It returns once the node runs; the node
// then joins the network in the background (see Node.Ready). The node
// stops when ctx ends or Close is called.
func Start(ctx context.Context, o Options) (*Node, error) {
	cfg, err := o.buildConfig()
	if err != nil {
		return nil, err
	}
	return start(ctx, cfg, o.Logger, o.Control == "")
}

// StartConfig starts a node from a node.toml file (see `tarzan init`).
// Every builtin plugin runs in this process; the file must not select a
// client adapter (its adapter section): this node's applications dial
// through Node.Dial. A missing identity key is created (mode 0600) where
// node.identity says. Logs go to slog.Default().
func StartConfig(ctx context.Context, path string) (*Node, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("tarzan: %w", err)
	}
	inProcess(cfg)
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if err := ensureIdentityAt(cfg.Node.Identity); err != nil {
		return nil, err
	}
	return start(ctx, cfg, nil, false)
}

func start(ctx context.Context, cfg *config.Config, log *slog.Logger, noControl bool) (*Node, error) {
	if log == nil {
		log = slog.Default()
	}
	ad, err := netstack.NewAdapter(nil)
	if err != nil {
		return nil, err
	}
	ad.SetLogger(log)
	// host.Start owns ad from here: it closes it on failure and on Close.
	h, err := host.Start(ctx, cfg, host.Options{Logger: log, Clients: []adapter.Adapter{ad}, NoControl: noControl})
	if err != nil {
		return nil, fmt.Errorf("tarzan: starting node: %w", err)
	}
	n := &Node{h: h, ad: ad, hops: cfg.Tunnels.Hops}
	n.def = &Client{n: n, dial: ad.DialContext}
	return n, nil
}

// ID is the node's identity in the network (hex), derived from the key in
// the data directory.
func (n *Node) ID() string { return n.h.Node().ID().String() }

// Addr is the address the node's transport is bound to (with its real
// port when Options.Listen asked for port 0): what other nodes use as a
// bootstrap peer.
func (n *Node) Addr() netip.AddrPort { return n.h.Node().Addr() }

// Dial connects to addr through a tunnel; see DialContext.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.def.DialContext(ctx, network, addr)
}

// DialContext connects to addr ("host:port") through a tunnel of the
// node's default isolation group. network is "tcp", "tcp4", "tcp6",
// "udp", "udp4" or "udp6". A host name is resolved at the exit. While the
// node cannot build a tunnel yet (it knows too few peers), DialContext
// waits for it until ctx ends, and then says what was missing.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.def.DialContext(ctx, network, addr)
}

// HTTPClient returns an http.Client whose requests go through tunnels of
// the default isolation group; see Client.HTTPClient.
func (n *Node) HTTPClient() *http.Client { return n.def.HTTPClient() }

// Transport returns the http.RoundTripper of HTTPClient.
func (n *Node) Transport() http.RoundTripper { return n.def.Transport() }

// Isolated returns a client whose connections share tunnels only with
// other clients of the same token: two tokens never share a tunnel, so an
// exit or relay cannot link their traffic by the circuit it travels on.
// Isolated("") is the node's default group (what Node.Dial uses). Close
// the client when done with it.
func (n *Node) Isolated(token string) *Client {
	if token == "" {
		return n.def
	}
	return n.client("token:" + token)
}

// NewIsolated returns a client isolated from every other, including
// every client Isolated returns (arti's isolated_client): its tunnels are
// its own for as long as it lives. One per connection isolates every
// connection.
func (n *Node) NewIsolated() *Client {
	return n.client(fmt.Sprintf("new:%d", n.fresh.Add(1)))
}

// client opens the isolation group key; tokens and fresh groups have
// distinct prefixes, so no token can join a NewIsolated group.
func (n *Node) client(key string) *Client {
	c := &Client{n: n}
	g, err := n.ad.Group(key)
	if errors.Is(err, adapter.ErrClosed) {
		err = ErrClosed
	}
	if err != nil {
		c.err = err
		return c
	}
	c.group, c.dial = g, g.DialContext
	return c
}

// Done is closed when the node has stopped: Close was called, the
// context given to Start ended, or the node failed.
func (n *Node) Done() <-chan struct{} { return n.h.Done() }

// Close stops the node: every connection it carries ends, its plugins
// stop, and its goroutines are gone when Close returns. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.def.closeIdle()
		n.closeErr = n.h.Close()
	})
	return n.closeErr
}

// Status is a snapshot of what the node knows.
type Status struct {
	ID      string // the node's identity (hex)
	Peers   int    // other nodes it knows
	LinksUp int    // mimic links that are up
	Tunnels int    // tunnels it originates (including spares)
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	st := n.h.Node().Status()
	return Status{ID: st.ID.String(), Peers: st.Peers, LinksUp: st.LinksUp, Tunnels: st.Tunnels}
}

// core is the running engine (tests look at its counters).
func (n *Node) core() *node.Node { return n.h.Node() }
