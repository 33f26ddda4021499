package tarzan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/netstack"
)

// Client dials through the tunnels of one isolation group (see
// Node.Isolated). Its methods are safe for concurrent use.
type Client struct {
	n     *Node
	group *netstack.Group // nil for the node's default group
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	err   error // why the group could not be opened

	trOnce sync.Once
	tr     *http.Transport
	closed atomic.Bool
}

// ErrClientClosed is returned by dials of a Client after its Close.
var ErrClientClosed = errors.New("tarzan: client closed")

// Dial is DialContext.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.DialContext(ctx, network, addr)
}

// DialContext connects to addr ("host:port") through a tunnel of the
// client's isolation group; see Node.DialContext.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, fmt.Errorf("tarzan: dial %s %s: %w", network, addr, err)
	}
	if c.err != nil {
		return fail(c.err)
	}
	if c.closed.Load() {
		return fail(ErrClientClosed)
	}
	if err := c.n.Ready(ctx); err != nil {
		return fail(err)
	}
	conn, err := c.dial(ctx, network, addr)
	if err == nil {
		return conn, nil
	}
	if c.n.closed() {
		return fail(ErrClosed)
	}
	if errors.Is(err, ErrNotAllowed) || errors.Is(ctx.Err(), context.Canceled) {
		return fail(err)
	}
	// No answer in time, ICMP unreachable (ErrUnreachable: the core could
	// not build a tunnel to an exit whose policy accepts addr), or the
	// far side refused: say what the node knew.
	st := c.n.Status()
	return fail(fmt.Errorf("%w (through a %d-hop tunnel; the node knows %d peers, %d mimic links up, %d tunnels)",
		err, c.n.hops, st.Peers, st.LinksUp, st.Tunnels))
}

// Transport returns an http.RoundTripper whose connections go through
// the client's tunnels. It ignores proxy environment variables (a proxy
// would see the traffic), and leaves host names to DialContext, so they
// are resolved at the exit.
func (c *Client) Transport() http.RoundTripper {
	c.trOnce.Do(func() {
		c.tr = &http.Transport{
			Proxy:                 nil,
			DialContext:           c.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second, // tunnels add round trips
			ExpectContinueTimeout: time.Second,
		}
	})
	return c.tr
}

// HTTPClient returns an http.Client that uses Transport. It has no
// overall timeout: give requests a context with a deadline.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: c.Transport()}
}

// Close releases the client's isolation group: its connections end when
// no other client of the same token holds it. Closing the node's default
// client (Isolated("")) only drops idle HTTP connections. Idempotent.
func (c *Client) Close() error {
	if c.group != nil {
		c.closed.Store(true) // the default client stays usable
	}
	c.closeIdle()
	if c.group != nil {
		return c.group.Close()
	}
	return nil
}

func (c *Client) closeIdle() {
	c.trOnce.Do(func() {}) // no transport made yet: nothing idle
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}
