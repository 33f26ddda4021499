package adapterplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin/internal/adapterpb"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

const rpcTimeout = 10 * time.Second

// client is the host side: an adapter.Adapter backed by a supervised
// child, with packets on a data channel as for transports.
type client struct {
	sup     *pluginkit.Supervisor
	options map[string]string

	mu      sync.Mutex // serialises Open with the restart replay
	name    string
	role    adapter.Role
	caps    *adapterpb.ConfigureResponse // what the plugin's adapter implements
	open    *adapterpb.OpenRequest       // replayed on restart
	pending *datachan.Pair
	offer   *datachan.ShmSetup // shared memory offered to the pending child, or nil

	data    *datachan.Slot[*dataConn]
	closed  atomic.Bool
	closing chan struct{}
	once    sync.Once

	rmu sync.Mutex // guards the receive state below
	buf []byte
	dec decoder

	dropped   atomic.Uint64 // read packets larger than the caller's buffer
	malformed atomic.Uint64 // written packets whose N lies outside their buffer
	badSlots  atomic.Uint64 // shared-memory slots or indices from the child that break the rules
}

// Launch starts the adapter plugin l describes and creates its adapter
// from options. If the child dies it is restarted and, if Open had been
// called, opened again with the same Config. Meanwhile ReadPackets blocks
// and WritePackets fails with an error wrapping pluginkit.ErrUnavailable.
// The result also implements pluginkit.Reporter.
func Launch(l pluginkit.Launcher, options map[string]string) (adapter.Adapter, error) {
	c := &client{options: options, data: datachan.NewSlot[*dataConn](), closing: make(chan struct{})}
	sup, err := pluginkit.Start(l, Kind, versions(&grpcPlugin{}), pluginkit.Hooks{
		Prepare: c.prepare, Attach: c.attach, Detach: c.data.Clear,
	})
	if err != nil {
		c.dropPending()
		return nil, err
	}
	c.sup = sup
	return c, nil
}

// prepare gives each new child its own data channel as fd 3 and, where
// the platform has it, offers shared memory (fds 4 and 5), which the
// child takes in its Configure answer (as transport children do, D47).
func (c *client) prepare(cmd *exec.Cmd) (func(), error) {
	c.dropPending()
	p, err := datachan.NewPair()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, p.Child)
	cmd.Env = append(cmd.Env, datachan.Env())
	offer := datachan.Offer(cmd)
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

func (c *client) attach(raw any, restart bool) error {
	rpc := raw.(adapterpb.AdapterClient)
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	var md metadata.MD
	resp, err := rpc.Configure(ctx, &adapterpb.ConfigureRequest{Options: c.options}, grpc.Header(&md))
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	c.name, c.role, c.caps = resp.GetName(), adapter.Role(resp.GetRole()), resp
	if restart && c.open != nil {
		if _, err := rpc.Open(ctx, c.open); err != nil {
			return fmt.Errorf("open again: %w", err)
		}
	}
	d := &dataConn{sock: c.pending.Host}
	if c.offer != nil {
		if datachan.Accepted(md.Get(datachan.ShmHeader)) {
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

func (c *client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

func (c *client) Role() adapter.Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role
}

func (c *client) Open(cfg adapter.Config) error {
	if c.closed.Load() {
		return adapter.ErrClosed
	}
	req := openRequest(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, err := c.sup.Client()
	if err != nil {
		return fmt.Errorf("adapterplugin: open: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := raw.(adapterpb.AdapterClient).Open(ctx, req); err != nil {
		return fmt.Errorf("adapterplugin: open: %w", err)
	}
	c.open = req
	return nil
}

// ReadPackets blocks until packets arrive, Close (adapter.ErrClosed), or,
// while the child restarts, until its replacement is ready. Packets larger
// than their buffer are dropped and counted.
func (c *client) ReadPackets(pkts []adapter.Packet) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.buf == nil {
		c.buf = make([]byte, maxMessage)
	}
	for {
		if c.closed.Load() {
			return 0, adapter.ErrClosed
		}
		if n := c.fill(pkts); n > 0 {
			return n, nil
		}
		d, ready := c.data.Wait()
		if d == nil {
			select {
			case <-ready:
			case <-c.closing:
			}
			continue
		}
		if d.shm != nil {
			n, err := c.readShm(d, pkts)
			if err != nil {
				c.shmFailed(d, err)
				continue
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		m, err := d.sock.Read(c.buf)
		if err != nil {
			c.data.Drop(d) // our Close or the child died
			continue
		}
		c.dec.reset(c.buf[:m])
	}
}

func (c *client) fill(pkts []adapter.Packet) int {
	n := 0
	for n < len(pkts) && c.dec.left > 0 {
		flow, data, err := c.dec.next()
		if err != nil {
			break
		}
		if len(data) > len(pkts[n].Buf) {
			c.dropped.Add(1)
			continue
		}
		pkts[n].N = copy(pkts[n].Buf, data)
		pkts[n].Flow = flow
		n++
	}
	return n
}

// WritePackets hands the packets to the child in as few messages as fit.
func (c *client) WritePackets(pkts []adapter.Packet) (int, error) {
	if c.closed.Load() {
		return 0, adapter.ErrClosed
	}
	d := c.data.Get()
	if d == nil {
		return 0, fmt.Errorf("adapterplugin: write: %w", pluginkit.ErrUnavailable)
	}
	if d.shm != nil {
		return c.writeShm(d, pkts)
	}
	conn := d.sock
	bp := msgPool.Get().(*[]byte)
	defer msgPool.Put(bp)
	done := 0
	for done < len(pkts) {
		m, k, skipped := encode((*bp)[:0], pkts[done:])
		c.malformed.Add(uint64(skipped))
		if k == skipped {
			done += k // nothing left to send in this message
			continue
		}
		if _, err := conn.Write(m); err != nil {
			if c.closed.Load() {
				return done, adapter.ErrClosed
			}
			return done, fmt.Errorf("adapterplugin: write: %w (%v)", pluginkit.ErrUnavailable, err)
		}
		done += k
	}
	return done, nil
}

// CloseFlow forwards to the plugin if its adapter is an
// adapter.FlowCloser, and is a no-op otherwise (the client always
// implements the interface so that the core's type assertion works
// whatever the plugin supports).
func (c *client) CloseFlow(flow uint64) error {
	c.mu.Lock()
	supported := c.caps.GetFlowCloser()
	c.mu.Unlock()
	if !supported {
		return nil
	}
	raw, err := c.sup.Client()
	if err != nil {
		return fmt.Errorf("adapterplugin: close flow: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	_, err = raw.(adapterpb.AdapterClient).CloseFlow(ctx, &adapterpb.CloseFlowRequest{Flow: flow})
	return err
}

// SetExclude forwards like CloseFlow and is remembered, so a restarted
// child is opened with the latest exclusions.
func (c *client) SetExclude(prefixes []netip.Prefix) error {
	strs := make([]string, len(prefixes))
	for i, p := range prefixes {
		strs[i] = p.String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open != nil {
		c.open.Exclude = strs
	}
	if !c.caps.GetExcludeUpdater() {
		return nil
	}
	raw, err := c.sup.Client()
	if err != nil {
		return fmt.Errorf("adapterplugin: set exclude: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	_, err = raw.(adapterpb.AdapterClient).SetExclude(ctx, &adapterpb.SetExcludeRequest{Prefixes: strs})
	return err
}

// SetExitPolicy forwards the reloaded policy to a child whose adapter
// takes one and is remembered, so a restarted child is opened with it. A
// child whose adapter does not take one gets ErrPolicyFixed.
func (c *client) SetExitPolicy(p *exitpolicy.Policy) error {
	rules := make([]string, len(p.Rules))
	for i, r := range p.Rules {
		rules[i] = r.String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open != nil {
		c.open.HasExitPolicy, c.open.ExitPolicy = true, rules
	}
	if !c.caps.GetPolicyUpdater() {
		return ErrPolicyFixed
	}
	raw, err := c.sup.Client()
	if err != nil {
		return fmt.Errorf("adapterplugin: set exit policy: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	_, err = raw.(adapterpb.AdapterClient).SetExitPolicy(ctx, &adapterpb.SetExitPolicyRequest{ExitPolicy: rules})
	return err
}

// ErrPolicyFixed is SetExitPolicy's answer for a plugin whose adapter does
// not implement adapter.PolicyUpdater: it keeps the policy it was opened
// with until it restarts.
var ErrPolicyFixed = errors.New("adapterplugin: the adapter keeps the exit policy it was opened with until it restarts")

var msgPool = sync.Pool{New: func() any {
	b := make([]byte, 0, maxMessage)
	return &b
}}

func (c *client) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.closing)
		if raw, err := c.sup.Client(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = raw.(adapterpb.AdapterClient).Close(ctx, &adapterpb.Empty{})
			cancel()
		}
		c.sup.Close()
		c.data.Clear()
		c.dropPending()
	})
	return nil
}

func (c *client) Restarts() uint64 { return c.sup.Restarts() }

func (c *client) PluginStats() pluginkit.Stats {
	st := c.sup.Stats()
	st.Counters = map[string]uint64{
		"host_dropped_too_big":   c.dropped.Load(),
		"host_dropped_malformed": c.malformed.Load(),
		"host_malformed":         c.badSlots.Load(),
		"host_shm_channel":       0, // 1: packets cross through shared memory
	}
	if d := c.data.Get(); d != nil && d.shm != nil {
		st.Counters["host_shm_channel"] = 1
	}
	return st
}

var (
	_ pluginkit.Reporter     = (*client)(nil)
	_ adapter.FlowCloser     = (*client)(nil)
	_ adapter.ExcludeUpdater = (*client)(nil)
	_ adapter.PolicyUpdater  = (*client)(nil)
	_ adapter.Restarter      = (*client)(nil)
)
