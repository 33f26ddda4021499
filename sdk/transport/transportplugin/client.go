package transportplugin

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin/internal/transportpb"
)

// rpcTimeout bounds every control call; a child that does not answer in
// time is treated as broken.
const rpcTimeout = 10 * time.Second

// client is the host side: a transport.Transport backed by a supervised
// child. Control calls go over gRPC; packets over a data channel (one per
// child generation) published in data.
type client struct {
	sup     *pluginkit.Supervisor
	options map[string]string

	mu      sync.Mutex // serialises control calls and the restart replay
	name    string
	bound   netip.AddrPort     // valid after Listen; replayed on restart
	pending *datachan.Pair     // made by prepare, published by attach
	offer   *datachan.ShmSetup // shared memory offered to the pending child, or nil
	creds   *transport.Credentials
	peers   map[netip.AddrPort]ed25519.PublicKey

	// Optional interfaces (params.go): what the first child named, the
	// advertised address and peers' parameters to replay, the last
	// parameters the child published.
	ifaces     []string
	advertised netip.AddrPort
	peerParams map[netip.AddrPort]string
	lastParams string

	data    *datachan.Slot[*dataConn]
	rd      reader
	closed  atomic.Bool
	closing chan struct{}
	once    sync.Once

	written, writeBatches atomic.Uint64
}

// Launch starts the transport plugin l describes, creates its transport
// from options and returns it. The child is restarted if it dies; see the
// package comment for what callers observe meanwhile. The result also
// implements pluginkit.Reporter.
func Launch(l pluginkit.Launcher, options map[string]string) (transport.Transport, error) {
	c := &client{options: options, closing: make(chan struct{}), peerParams: map[netip.AddrPort]string{}}
	c.data = datachan.NewSlot[*dataConn]()
	c.rd.c = c
	sup, err := pluginkit.Start(l, Kind, versions(&grpcPlugin{}), pluginkit.Hooks{
		Prepare: c.prepare,
		Attach:  c.attach,
		Detach:  c.data.Clear,
	})
	if err != nil {
		c.dropPending()
		return nil, err
	}
	c.sup = sup
	return c.view(), nil
}

// prepare gives each new child its own data channel as fd 3 and, where
// the platform has it and TARZAN_DATACHAN is not "socket", offers shared
// memory (fds 4 and 5); the child takes the offer in its Configure answer.
func (c *client) prepare(cmd *exec.Cmd) (func(), error) {
	c.dropPending()
	p, err := datachan.NewPair()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, p.Child)
	cmd.Env = append(cmd.Env, datachan.Env())
	offer := datachan.Offer(cmd) // nil: the socket framing, which needs no offer (the default: D60 merge note)
	c.mu.Lock()
	c.pending, c.offer = p, offer
	c.mu.Unlock()
	return func() {
		p.Child.Close()
		if offer != nil {
			offer.Started()
		}
	}, nil
}

func (c *client) dropPending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		c.pending.Host.Close()
		c.pending = nil
	}
	if c.offer != nil {
		c.offer.Abandon()
		c.offer = nil
	}
}

// attach configures a fresh child and, after a restart, listens again on
// the address the first child had bound, so peers keep reaching us.
func (c *client) attach(raw any, restart bool) error {
	rpc := raw.(transportpb.TransportClient)
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	var md metadata.MD
	resp, err := rpc.Configure(ctx, &transportpb.ConfigureRequest{Options: c.options}, grpc.Header(&md))
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	c.name = resp.GetName()
	if !restart {
		c.ifaces = resp.GetInterfaces()
	} else if !slices.Equal(c.ifaces, resp.GetInterfaces()) {
		return fmt.Errorf("restarted plugin implements %v, the first implemented %v; restart the node to take a new plugin binary", resp.GetInterfaces(), c.ifaces)
	}
	if err := c.replayIdentity(ctx, rpc); err != nil {
		return err
	}
	if restart && c.bound.IsValid() {
		lr, err := rpc.Listen(ctx, &transportpb.ListenRequest{Addr: c.bound.String()})
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", c.bound, err)
		}
		if lr.GetBound() != c.bound.String() {
			return fmt.Errorf("listen again on %s: plugin bound %s instead", c.bound, lr.GetBound())
		}
	}
	if err := c.replayParams(ctx, rpc); err != nil {
		return err
	}
	d := &dataConn{sock: c.pending.Host}
	if c.offer != nil {
		if slices.Contains(md.Get(datachan.ShmHeader), datachan.ShmValue) {
			d.shm = c.offer.Host(d.sock)
		} else { // an older plugin binary: socket framing
			c.offer.Abandon()
		}
		c.offer = nil
	}
	c.data.Set(d)
	c.pending = nil
	return nil
}

func (c *client) control() (transportpb.TransportClient, error) {
	raw, err := c.sup.Client()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", transport.ErrUnavailable, err)
	}
	return raw.(transportpb.TransportClient), nil
}

func (c *client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

func (c *client) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	if c.closed.Load() {
		return netip.AddrPort{}, transport.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bound.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("transportplugin: already listening on %s", c.bound)
	}
	rpc, err := c.control()
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := rpc.Listen(ctx, &transportpb.ListenRequest{Addr: addr.String()})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("transportplugin: listen on %s: %w", addr, err)
	}
	bound, err := netip.ParseAddrPort(resp.GetBound())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("transportplugin: plugin returned bad address %q: %w", resp.GetBound(), err)
	}
	c.bound = bound
	return bound, nil
}

func (c *client) ReadBatch(pkts []transport.Packet) (int, error) { return c.rd.read(pkts) }

// WriteBatch hands the batch to the child in as few messages as fit
// (one for any batch of BatchSize frames), gathered from the caller's
// buffers with one writev each, without copying them. A full channel
// blocks, which passes the child's back-pressure on to the caller.
func (c *client) WriteBatch(pkts []transport.Packet) error {
	if c.closed.Load() {
		return transport.ErrClosed
	}
	d := c.data.Get()
	if d == nil {
		return transport.ErrUnavailable
	}
	if d.shm != nil {
		if err := c.writeShm(d, pkts); err != nil {
			return err
		}
		c.writeBatches.Add(1)
		c.written.Add(uint64(len(pkts)))
		return nil
	}
	conn := d.sock
	g := gatherers.Get().(*gatherer)
	defer gatherers.Put(g)
	for rest := pkts; len(rest) > 0; {
		k, err := g.gather(rest)
		if err != nil {
			return err
		}
		if err := g.writeTo(conn); err != nil {
			if c.closed.Load() {
				return transport.ErrClosed
			}
			return fmt.Errorf("%w: %v", transport.ErrUnavailable, err)
		}
		rest = rest[k:]
	}
	c.writeBatches.Add(1)
	c.written.Add(uint64(len(pkts)))
	return nil
}

var gatherers = sync.Pool{New: func() any { return newGatherer() }}

func (c *client) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.closing)
		// Let the plugin release its socket cleanly before it is killed.
		if rpc, err := c.control(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = rpc.Close(ctx, &transportpb.Empty{})
			cancel()
		}
		c.sup.Close()
		c.data.Clear()
		c.dropPending()
	})
	return nil
}

// Restarts counts how often the child was restarted.
func (c *client) Restarts() uint64 { return c.sup.Restarts() }

// PluginStats merges the supervisor's view, the host's counters and, if
// the child answers quickly, the child's.
func (c *client) PluginStats() pluginkit.Stats {
	st := c.sup.Stats()
	st.Counters = map[string]uint64{
		"host_packets_written": c.written.Load(),
		"host_batches_written": c.writeBatches.Load(),
		"host_packets_read":    c.rd.packets.Load(),
		"host_dropped_too_big": c.rd.tooBig.Load(),
		"host_malformed":       c.rd.malformed.Load(),
		"host_shm_channel":     0, // 1: packets cross through shared memory
	}
	if d := c.data.Get(); d != nil && d.shm != nil {
		st.Counters["host_shm_channel"] = 1
	}
	if rpc, err := c.control(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if resp, err := rpc.Stats(ctx, &transportpb.Empty{}); err == nil {
			for k, v := range resp.GetCounters() {
				st.Counters[k] = v
			}
		}
	}
	return st
}

var _ pluginkit.Reporter = (*client)(nil)
