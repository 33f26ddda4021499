// Package host builds a running Tarzan node from a typed configuration:
// it opens the plugins the configuration selects through one catalog
// (catalog.go), assembles the core (core.go), serves the control API
// (control.go) and tears all of it down in reverse order with one Close.
//
// cmd/tarzan's "node" command, the embedding API at the module root and
// every launcher of local networks (host/localnet) start nodes through it.
package host

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/onion"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// Options are what a caller adds to the configuration.
type Options struct {
	// Logger receives the node's and the plugins' logs; nil means
	// slog.Default().
	Logger *slog.Logger
	// Clients are in-process client adapters the core opens beside the
	// configuration's. The core runs at most one client adapter today, so
	// at most one, and only when the configuration names none. Start takes
	// ownership: they are closed by Close, or by Start when it fails.
	Clients []adapter.Adapter
	// Exe is the executable that serves shipped plugins as children
	// ("tarzan plugin serve KIND NAME"); "" means os.Executable(). A
	// program that is not the tarzan binary sets every plugin InProcess
	// instead.
	Exe string
	// NoControl leaves the control API off.
	NoControl bool
	// Level, if set, is Logger's level: Reload sets it when
	// node.log_level changes (NewLogger makes both).
	Level *slog.LevelVar
}

// Host is a running node with its plugins and control API.
type Host struct {
	cfg   *config.Config
	log   *slog.Logger
	node  *node.Node
	ip    *ipservice.Service // the IP service on node (client and exit sides)
	loops *loopcover.Prober  // loop cover on node; idle unless the cover policy asks for loops
	ctrl  net.Addr

	// Operating the node (control.go, reload.go).
	ctrlSrv     *control.Server
	metricsAddr net.Addr
	started     time.Time
	level       *slog.LevelVar // Options.Level

	id     *identity.Identity // read by prepare
	policy *exitpolicy.Policy // the exit policy, parsed once by prepare

	// What a reload needs (reload.go): the catalog to open a new cover
	// policy through, and the opened plugins.
	cat     catalog
	plugins *plugins

	undo []func() error // teardown steps in start order; Close runs them backwards

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// Start opens cfg's plugins, starts the node and its control API. The
// node runs until ctx ends or Close is called. When Start fails it has
// closed everything it opened: no plugin child, socket or file is left.
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Host, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Host{cfg: cfg, log: o.Logger, done: make(chan struct{}), started: time.Now(), level: o.Level}
	defer func() {
		if err != nil {
			h.teardown()
		}
	}()
	if err := h.prepare(o); err != nil {
		closeAll(o.Clients)
		return nil, err
	}
	if cfg.Node.AllowVariableTimeAES && !onion.HardwareAES() {
		o.Logger.Warn("this CPU has no AES instructions: onion cells are encrypted in variable time, which leaks key bits through timing (node.allow_variable_time_aes = true)")
	}
	h.cat = catalog{exe: o.Exe, log: o.Logger}
	p, err := openPlugins(h.cat, cfg, o.Clients)
	if err != nil {
		return nil, err
	}
	h.plugins = p
	if err := h.startCore(ctx, p); err != nil {
		return nil, err
	}
	if !o.NoControl {
		if err := h.startControl(p); err != nil {
			return nil, err
		}
	}
	if err := h.startMetrics(p); err != nil {
		return nil, err
	}
	go h.watch()
	return h, nil
}

// Node is the running node.
func (h *Host) Node() *node.Node { return h.node }

// IP is the node's IP service: its client tunnels and exit flows.
func (h *Host) IP() *ipservice.Service { return h.ip }

// ControlAddr is where the control API listens; nil with NoControl.
func (h *Host) ControlAddr() net.Addr { return h.ctrl }

// Close stops the control API, the node and its plugins, in reverse order
// of start, and waits for the node's goroutines. It is idempotent; every
// call returns the first call's result.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.closeErr = h.teardown()
		close(h.done)
	})
	return h.closeErr
}

// Done is closed when the node has stopped (its context ended or Close
// was called) and everything is torn down.
func (h *Host) Done() <-chan struct{} { return h.done }

// Err is the error the teardown met, once Done is closed; nil before.
func (h *Host) Err() error {
	select {
	case <-h.done:
		return h.closeErr
	default:
		return nil
	}
}

// watch tears the host down when the node stops by itself (its context
// ended): the node's goroutines have all returned then.
func (h *Host) watch() {
	h.node.Wait()
	h.Close()
}

// push records a teardown step.
func (h *Host) push(f func() error) { h.undo = append(h.undo, f) }

// teardown runs the recorded steps, last first, each exactly once.
func (h *Host) teardown() error {
	var errs []error
	for i := len(h.undo) - 1; i >= 0; i-- {
		if err := h.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	h.undo = nil
	return errors.Join(errs...)
}

func closeAll(cs []adapter.Adapter) {
	for _, c := range cs {
		c.Close()
	}
}
