package pluginkit

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
)

// ErrUnavailable is returned by Supervisor.Client while no child is up
// (between a crash and the end of the restart).
var ErrUnavailable = errors.New("pluginkit: plugin is restarting")

// Restart back-off: the first restart waits minDelay, each further one
// twice as long up to maxDelay; a child that stayed up for stableAfter
// resets it. Variables so this package's tests can shorten them.
var (
	minDelay     = 100 * time.Millisecond
	maxDelay     = 5 * time.Second
	stableAfter  = time.Minute
	pollInterval = 50 * time.Millisecond
	// exitSafetyPoll is how often a child whose exit the kernel reports
	// (processExit) is polled all the same.
	exitSafetyPoll = 10 * time.Second
	startTimeout   = 20 * time.Second
)

// Hooks connect a kind package's state to the supervisor. All are optional.
type Hooks struct {
	// Prepare runs before every start. It may add ExtraFiles and Env to cmd
	// (go-plugin leaves both alone). started runs once the start attempt is
	// over, successful or not: the child has its copies by then, so the
	// host closes its own.
	Prepare func(cmd *exec.Cmd) (started func(), err error)
	// Attach runs after every start, before the child is published, with
	// the value go-plugin dispensed (the kind's gRPC client). It replays
	// the state the host had set (options, listen address, ...). An error
	// kills the child; on a restart the supervisor then tries again.
	Attach func(raw any, restart bool) error
	// Detach runs when a child has died, before any restart.
	Detach func()
}

// Supervisor owns one plugin child: it starts it, notices when it dies,
// restarts it with back-off and replays state through Hooks. Kind packages
// build their host-side clients on it; plugin authors never see it.
type Supervisor struct {
	l        Launcher
	kind     string
	versions map[int]plugin.Plugin
	hooks    Hooks

	mu      sync.Mutex
	child   *child // nil while down
	lastErr string

	restarts atomic.Uint64
	failures atomic.Uint64

	closeOnce sync.Once
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when watch returns
}

type child struct {
	client  *plugin.Client
	raw     any
	pid     int
	started time.Time
}

// Start launches the first child and supervises it until Close. Errors of
// the first start (bad path, checksum, protocol version, Attach) are
// returned, not retried: they are configuration mistakes.
func Start(l Launcher, kind string, versions map[int]plugin.Plugin, hooks Hooks) (*Supervisor, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{l: l, kind: kind, versions: versions, hooks: hooks,
		stop: make(chan struct{}), done: make(chan struct{})}
	c, err := s.spawn(false)
	if err != nil {
		return nil, err
	}
	s.child = c
	register(s)
	go s.watch()
	return s, nil
}

func (s *Supervisor) spawn(restart bool) (*child, error) {
	cmd := s.l.command()
	var started func()
	if s.hooks.Prepare != nil {
		var err error
		if started, err = s.hooks.Prepare(cmd); err != nil {
			return nil, fmt.Errorf("pluginkit: %s %q: %w", s.kind, s.l.name(), err)
		}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(s.kind, s.versions),
		Cmd:              cmd,
		SecureConfig:     s.l.secureConfig(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     startTimeout,
		Logger:           newBridge(s.l.logger(), s.l.name()),
		SkipHostEnv:      true, // command() put it in, before Launcher.Env
	})
	var rpc plugin.ClientProtocol
	err := withTimerSlack(s.l.TimerSlack, func() error {
		var err error
		rpc, err = client.Client() // starts the child from this thread
		return err
	})
	if started != nil {
		started()
	}
	if err != nil {
		client.Kill()
		err = versionError(s.l.name(), sortedVersions(s.versions), s.l.checksumError(err))
		return nil, fmt.Errorf("pluginkit: starting %s plugin %q (%s): %w", s.kind, s.l.name(), s.l.Path, err)
	}
	raw, err := rpc.Dispense(s.kind)
	if err == nil && s.hooks.Attach != nil {
		err = s.hooks.Attach(raw, restart)
	}
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("pluginkit: setting up %s plugin %q: %w", s.kind, s.l.name(), err)
	}
	c := &child{client: client, raw: raw, started: time.Now()}
	if rc := client.ReattachConfig(); rc != nil {
		c.pid = rc.Pid
	}
	return c, nil
}

// watch waits for the child to die and restarts it until Close.
func (s *Supervisor) watch() {
	defer close(s.done)
	var delay time.Duration
	for {
		s.mu.Lock()
		c := s.child
		s.mu.Unlock()
		if !s.waitExit(c) {
			return
		}
		s.down(c)
		delay = nextDelay(delay, time.Since(c.started))
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(delay):
			}
			nc, err := s.spawn(true)
			if err == nil {
				s.mu.Lock()
				s.child = nc
				s.mu.Unlock()
				s.restarts.Add(1)
				s.l.logger().Info("plugin restarted", "plugin", s.l.name(), "kind", s.kind, "pid", nc.pid, "restarts", s.restarts.Load())
				break
			}
			s.failures.Add(1)
			s.setErr(err.Error())
			s.l.logger().Warn("plugin restart failed", "plugin", s.l.name(), "kind", s.kind, "retry_in", delay, "err", err)
			delay = nextDelay(delay, 0)
		}
	}
}

// waitExit waits until c's process has ended, and reports false when
// Close came first. go-plugin offers no exit channel, only Exited to
// poll; polling it every 50 ms woke the host 20 times a second per
// plugin. Where the kernel tells of the exit (a pidfd), the wait costs
// nothing and Exited is read only as a safety net, once every
// exitSafetyPoll (in case the pid was reused before the watch began).
func (s *Supervisor) waitExit(c *child) bool {
	poll := pollInterval
	var exited <-chan struct{}
	if c.pid > 0 {
		if ch, release, ok := processExit(c.pid); ok {
			defer release()
			exited, poll = ch, exitSafetyPoll
		}
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for !c.client.Exited() {
		select {
		case <-s.stop:
			return false
		case <-exited:
			return true
		case <-tick.C:
		}
	}
	return true
}

// down unpublishes a dead child and reaps it.
func (s *Supervisor) down(c *child) {
	s.mu.Lock()
	s.child = nil
	s.mu.Unlock()
	s.setErr(fmt.Sprintf("plugin process %d exited", c.pid))
	s.l.logger().Warn("plugin died", "plugin", s.l.name(), "kind", s.kind, "pid", c.pid, "uptime", time.Since(c.started).Round(time.Millisecond))
	if s.hooks.Detach != nil {
		s.hooks.Detach()
	}
	c.client.Kill() // closes the gRPC connection and waits for go-plugin's goroutines
}

func nextDelay(prev, ranFor time.Duration) time.Duration {
	if prev == 0 || ranFor >= stableAfter {
		return minDelay
	}
	return min(2*prev, maxDelay)
}

func (s *Supervisor) setErr(e string) {
	s.mu.Lock()
	s.lastErr = e
	s.mu.Unlock()
}

// Client returns the current child's dispensed client, or ErrUnavailable
// while it is being restarted.
func (s *Supervisor) Client() (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.child == nil {
		return nil, ErrUnavailable
	}
	return s.child.raw, nil
}

// PID is the current child's process ID, 0 while none runs.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.child == nil {
		return 0
	}
	return s.child.pid
}

// Restarts counts children started after the first one.
func (s *Supervisor) Restarts() uint64 { return s.restarts.Load() }

// Stats reports the supervisor's view; kind packages add Counters.
func (s *Supervisor) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Name: s.l.name(), Kind: s.kind, Restarts: s.restarts.Load(),
		StartFailures: s.failures.Load(), LastError: s.lastErr}
	if s.child != nil {
		st.Running, st.PID, st.Started = true, s.child.pid, s.child.started
	}
	return st
}

// Close stops supervising and kills the child. It waits for the child to
// exit, so no orphan is left behind.
func (s *Supervisor) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		c := s.child
		s.child = nil
		s.mu.Unlock()
		if c != nil {
			c.client.Kill()
		}
		unregister(s)
	})
	return nil
}
