package discoveryplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin/internal/discoverypb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

const (
	rpcTimeout = 10 * time.Second
	// retryPause is how long Next waits before asking again while the
	// child restarts.
	retryPause = 50 * time.Millisecond
)

// client is the host side: a discovery.Discovery backed by a supervised
// child.
type client struct {
	sup     *pluginkit.Supervisor
	options map[string]string

	mu      sync.Mutex // serialises Start with the restart replay
	name    string
	self    []byte
	started bool

	closed context.Context // done after Close
	close  context.CancelFunc
	once   sync.Once

	messaging // Outbox and Deliver (messages.go)
}

// Launch starts the discovery plugin l describes and creates its backend
// from options. If the child dies it is restarted and, if Start had been
// called, started again with the same descriptor; a pending Next waits for
// the new child. Descriptors passed to Admitted before the crash are not
// replayed. The result also implements pluginkit.Reporter and
// discovery.Messenger (see Outbox and Deliver).
func Launch(l pluginkit.Launcher, options map[string]string) (discovery.Discovery, error) {
	c := &client{options: options, messaging: newMessaging()}
	c.closed, c.close = context.WithCancel(context.Background())
	sup, err := pluginkit.Start(l, Kind, versions(&grpcPlugin{}), pluginkit.Hooks{Attach: c.attach})
	if err != nil {
		c.close()
		return nil, err
	}
	c.sup = sup
	go c.forward()
	return c, nil
}

func (c *client) attach(raw any, restart bool) error {
	rpc := raw.(discoverypb.DiscoveryClient)
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := rpc.Configure(ctx, &discoverypb.ConfigureRequest{Options: c.options})
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	c.name = resp.GetName()
	if restart && c.started {
		if _, err := rpc.Start(ctx, &discoverypb.StartRequest{Self: c.self}); err != nil {
			return fmt.Errorf("start again: %w", err)
		}
	}
	return nil
}

func (c *client) rpc() (discoverypb.DiscoveryClient, error) {
	if c.closed.Err() != nil {
		return nil, discovery.ErrClosed
	}
	raw, err := c.sup.Client()
	if err != nil {
		return nil, fmt.Errorf("discoveryplugin: %w", err)
	}
	return raw.(discoverypb.DiscoveryClient), nil
}

func (c *client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

func (c *client) Start(self []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rpc, err := c.rpc()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := rpc.Start(ctx, &discoverypb.StartRequest{Self: self}); err != nil {
		return fmt.Errorf("discoveryplugin: start: %w", err)
	}
	c.self, c.started = append([]byte(nil), self...), true
	return nil
}

func (c *client) Next(ctx context.Context) ([]discovery.Proposal, error) {
	// End the call on Close as well as when ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.closed, cancel)()
	for {
		rpc, err := c.rpc()
		if err == nil {
			var resp *discoverypb.NextResponse
			if resp, err = rpc.Next(ctx, &discoverypb.Empty{}); err == nil {
				return proposals(resp)
			}
		}
		switch {
		case c.closed.Err() != nil, status.Code(err) == codes.FailedPrecondition:
			return nil, discovery.ErrClosed
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, pluginkit.ErrUnavailable), status.Code(err) == codes.Unavailable, status.Code(err) == codes.Canceled:
			// The child died under us; wait for its replacement.
			select {
			case <-ctx.Done():
			case <-time.After(retryPause):
			}
		default:
			return nil, fmt.Errorf("discoveryplugin: next: %w", err)
		}
	}
}

func proposals(resp *discoverypb.NextResponse) ([]discovery.Proposal, error) {
	out := make([]discovery.Proposal, len(resp.GetProposals()))
	for i, p := range resp.GetProposals() {
		out[i] = discovery.Proposal{Descriptor: p.GetDescriptor_(), Transport: p.GetTransport()}
		if p.GetAddr() != "" {
			a, err := netip.ParseAddrPort(p.GetAddr())
			if err != nil {
				return nil, fmt.Errorf("discoveryplugin: plugin proposed bad address %q: %w", p.GetAddr(), err)
			}
			out[i].Addr = a
		}
	}
	return out, nil
}

func (c *client) Admitted(descriptors [][]byte) error {
	rpc, err := c.rpc()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := rpc.Admitted(ctx, &discoverypb.AdmittedRequest{Descriptors: descriptors}); err != nil {
		return fmt.Errorf("discoveryplugin: admitted: %w", err)
	}
	return nil
}

func (c *client) Close() error {
	c.once.Do(func() {
		if rpc, err := c.rpc(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = rpc.Close(ctx, &discoverypb.Empty{})
			cancel()
		}
		c.close()
		c.sup.Close()
	})
	return nil
}

func (c *client) Restarts() uint64 { return c.sup.Restarts() }

// PluginStats is the supervisor's view with, if the child answers within
// a second, the backend's own counters (StatsReporter).
func (c *client) PluginStats() pluginkit.Stats {
	st := c.sup.Stats()
	if rpc, err := c.rpc(); err == nil && st.Running {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if resp, err := rpc.Stats(ctx, &discoverypb.Empty{}); err == nil && len(resp.GetCounters()) > 0 {
			st.Counters = resp.GetCounters()
		}
	}
	return st
}

var _ pluginkit.Reporter = (*client)(nil)
