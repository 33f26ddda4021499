package coverplugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin/internal/coverpb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// Pool runs many policies of one plugin executable in one child process,
// one session each (e.g. one per simulated node), and ticks any number
// of them in one call (TickMany). A plugin built before sessions existed
// answers Unimplemented to the first New; the pool then falls back to
// one child per policy, as Launch does, and TickMany ticks them one by
// one. Either way the policies New returns are ordinary cover.Policy
// values (and cover.Looper, pluginkit.Reporter).
//
// When the shared child dies, the supervisor restarts it and the pool
// opens every live session again with its options; the policies start
// afresh, as after a restart with Launch.
type Pool struct {
	l pluginkit.Launcher

	mu       sync.Mutex
	sup      *pluginkit.Supervisor // nil in fallback mode
	sessions map[uint64]*sessionPolicy
	next     uint64
	fallback bool
	closed   bool
}

// StartPool starts the plugin l describes, to serve many policies.
func StartPool(l pluginkit.Launcher) (*Pool, error) {
	p := &Pool{l: l, sessions: map[uint64]*sessionPolicy{}}
	sup, err := pluginkit.Start(l, Kind, versions(&grpcPlugin{}), pluginkit.Hooks{Attach: p.attach})
	if err != nil {
		return nil, err
	}
	p.sup = sup
	return p, nil
}

// Shared reports whether the pool's policies share one child (false: the
// plugin has no sessions and each policy has a child of its own). It is
// known after the first New.
func (p *Pool) Shared() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.fallback
}

// attach opens every live session in a new child (a restart).
func (p *Pool) attach(raw any, restart bool) error {
	if !restart {
		return nil
	}
	p.mu.Lock()
	live := make([]*sessionPolicy, 0, len(p.sessions))
	for _, s := range p.sessions {
		live = append(live, s)
	}
	p.mu.Unlock()
	for _, s := range live {
		if err := s.open(raw.(coverpb.CoverClient)); err != nil {
			return err
		}
	}
	return nil
}

// New creates one policy from options: a session in the shared child, or
// (fallback) a child of its own.
func (p *Pool) New(options map[string]string) (cover.Policy, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("coverplugin: pool is closed")
	}
	if p.fallback {
		p.mu.Unlock()
		return Launch(p.l, options)
	}
	p.next++
	s := &sessionPolicy{pool: p, id: p.next, options: options}
	p.sessions[s.id] = s
	sup := p.sup
	p.mu.Unlock()
	raw, err := sup.Client()
	if err == nil {
		err = s.open(raw.(coverpb.CoverClient))
	}
	if err == nil {
		return s, nil
	}
	p.mu.Lock()
	delete(p.sessions, s.id)
	if status.Code(err) != codes.Unimplemented || len(p.sessions) > 0 {
		p.mu.Unlock()
		return nil, err
	}
	// A plugin without sessions: one child per policy from now on.
	p.fallback, p.sup = true, nil
	p.mu.Unlock()
	sup.Close()
	return Launch(p.l, options)
}

// TickMany ticks policies made by this pool's New, all at now, in one
// call when they share the child. links[i] are policies[i]'s links; the
// answer for policies[i] is targets[i], or errs[i] when that policy's tick
// failed (errs is nil when none did).
func (p *Pool) TickMany(now time.Time, policies []cover.Policy, links [][]cover.LinkStats) (targets [][]cover.Target, errs []error) {
	targets = make([][]cover.Target, len(policies))
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(policies))
		}
		errs[i] = err
	}
	req := &coverpb.TickSessionsRequest{NowUnixNano: now.UnixNano()}
	var at []int // policies' indexes in req.Ticks
	for i, pol := range policies {
		s, ok := pol.(*sessionPolicy)
		if !ok || s.pool != p {
			// Fallback (or a stranger): its own call.
			t, err := pol.Tick(now, links[i])
			targets[i] = t
			if err != nil {
				fail(i, err)
			}
			continue
		}
		req.Ticks = append(req.Ticks, &coverpb.SessionTick{Session: s.id, Links: toPB(links[i])})
		at = append(at, i)
	}
	if len(at) == 0 {
		return targets, errs
	}
	p.mu.Lock()
	sup := p.sup
	p.mu.Unlock()
	resp, err := tickSessions(sup, req)
	for k, i := range at {
		if err != nil {
			fail(i, err)
			continue
		}
		st := resp.GetTargets()[k]
		if st.GetError() != "" {
			fail(i, fmt.Errorf("coverplugin: tick: %s", st.GetError()))
			continue
		}
		t, err := fromPB(st.GetRates(), st.GetPoisson(), len(links[i]))
		targets[i] = t
		if err != nil {
			fail(i, err)
		}
	}
	return targets, errs
}

func tickSessions(sup *pluginkit.Supervisor, req *coverpb.TickSessionsRequest) (*coverpb.TickSessionsResponse, error) {
	if sup == nil {
		return nil, errors.New("coverplugin: tick: pool is closed")
	}
	raw, err := sup.Client()
	if err != nil {
		return nil, fmt.Errorf("coverplugin: tick: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tickTimeout)
	defer cancel()
	resp, err := raw.(coverpb.CoverClient).TickSessions(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("coverplugin: tick: %w", err)
	}
	if len(resp.GetTargets()) != len(req.GetTicks()) {
		return nil, fmt.Errorf("coverplugin: plugin answered %d ticks of %d", len(resp.GetTargets()), len(req.GetTicks()))
	}
	return resp, nil
}

// Close ends every session and the shared child. Policies New returned
// in fallback mode are closed by their owners, as Launch's are.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	sup := p.sup
	p.sessions = map[uint64]*sessionPolicy{}
	p.mu.Unlock()
	if sup == nil {
		return nil
	}
	if raw, err := sup.Client(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = raw.(coverpb.CoverClient).Close(ctx, &coverpb.Empty{})
		cancel()
	}
	return sup.Close()
}

// sessionPolicy is one policy of a Pool's shared child.
type sessionPolicy struct {
	pool    *Pool
	id      uint64
	options map[string]string

	mu       sync.Mutex
	name     string
	interval time.Duration
	loopRate float64
}

var (
	_ cover.Looper       = (*sessionPolicy)(nil)
	_ pluginkit.Reporter = (*sessionPolicy)(nil)
)

func (s *sessionPolicy) open(c coverpb.CoverClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), tickTimeout)
	defer cancel()
	resp, err := c.Open(ctx, &coverpb.OpenRequest{Session: s.id, Options: s.options})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.name, s.interval, s.loopRate = resp.GetName(), time.Duration(resp.GetIntervalNs()), resp.GetLoopRate()
	return nil
}

func (s *sessionPolicy) Name() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name
}

func (s *sessionPolicy) Interval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interval
}

func (s *sessionPolicy) Loops() cover.Loops {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cover.Loops{Rate: s.loopRate}
}

func (s *sessionPolicy) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	t, errs := s.pool.TickMany(now, []cover.Policy{s}, [][]cover.LinkStats{links})
	if errs != nil {
		return nil, errs[0]
	}
	return t[0], nil
}

// Close ends this session; the child stays for the others.
func (s *sessionPolicy) Close() error {
	p := s.pool
	p.mu.Lock()
	_, live := p.sessions[s.id]
	delete(p.sessions, s.id)
	sup := p.sup
	p.mu.Unlock()
	if !live || sup == nil {
		return nil
	}
	raw, err := sup.Client()
	if err != nil {
		return nil // the child is gone, and the session with it
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = raw.(coverpb.CoverClient).CloseSession(ctx, &coverpb.CloseSessionRequest{Session: s.id})
	return err
}

func (s *sessionPolicy) Restarts() uint64 {
	if sup := s.pool.supervisor(); sup != nil {
		return sup.Restarts()
	}
	return 0
}

func (s *sessionPolicy) PluginStats() pluginkit.Stats {
	if sup := s.pool.supervisor(); sup != nil {
		return sup.Stats()
	}
	return pluginkit.Stats{}
}

func (p *Pool) supervisor() *pluginkit.Supervisor {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sup
}
