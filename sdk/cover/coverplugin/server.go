package coverplugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin/internal/coverpb"
)

// server is the child side: it owns the policy.
type server struct {
	coverpb.UnimplementedCoverServer
	factory cover.Factory

	mu    sync.Mutex
	p     cover.Policy
	links []cover.LinkStats // reused between ticks

	sessions map[uint64]*session // Open's policies, by the host's number
}

// session is one policy of many in this child (Open).
type session struct {
	p    cover.Policy
	resp *coverpb.ConfigureResponse
}

func (s *server) Configure(_ context.Context, req *coverpb.ConfigureRequest) (*coverpb.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		return nil, errors.New("coverplugin: already configured")
	}
	p, err := s.factory(req.GetOptions())
	if err != nil {
		return nil, fmt.Errorf("coverplugin: creating policy: %w", err)
	}
	s.p = p
	return configured(p), nil
}

func configured(p cover.Policy) *coverpb.ConfigureResponse {
	resp := &coverpb.ConfigureResponse{Name: p.Name(), IntervalNs: int64(p.Interval())}
	if l, ok := p.(cover.Looper); ok {
		resp.LoopRate = l.Loops().Rate
	}
	return resp
}

func (s *server) Open(_ context.Context, req *coverpb.OpenRequest) (*coverpb.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetSession()
	if id == 0 {
		return nil, errors.New("coverplugin: session 0 is Configure's policy; open sessions from 1")
	}
	if ss, ok := s.sessions[id]; ok {
		return ss.resp, nil
	}
	p, err := s.factory(req.GetOptions())
	if err != nil {
		return nil, fmt.Errorf("coverplugin: creating policy: %w", err)
	}
	if s.sessions == nil {
		s.sessions = map[uint64]*session{}
	}
	ss := &session{p: p, resp: configured(p)}
	s.sessions[id] = ss
	return ss.resp, nil
}

func (s *server) TickSessions(_ context.Context, req *coverpb.TickSessionsRequest) (*coverpb.TickSessionsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Unix(0, req.GetNowUnixNano())
	resp := &coverpb.TickSessionsResponse{Targets: make([]*coverpb.SessionTargets, len(req.GetTicks()))}
	for i, t := range req.GetTicks() {
		ss, ok := s.sessions[t.GetSession()]
		if !ok {
			resp.Targets[i] = &coverpb.SessionTargets{Error: fmt.Sprintf("coverplugin: session %d is not open", t.GetSession())}
			continue
		}
		r, err := s.tick(ss.p, now, t.GetLinks())
		if err != nil {
			resp.Targets[i] = &coverpb.SessionTargets{Error: err.Error()}
			continue
		}
		resp.Targets[i] = &coverpb.SessionTargets{Rates: r.Rates, Poisson: r.Poisson}
	}
	return resp, nil
}

func (s *server) CloseSession(_ context.Context, req *coverpb.CloseSessionRequest) (*coverpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[req.GetSession()]
	if !ok {
		return &coverpb.Empty{}, nil
	}
	delete(s.sessions, req.GetSession())
	return &coverpb.Empty{}, ss.p.Close()
}

func (s *server) Tick(_ context.Context, req *coverpb.TickRequest) (*coverpb.TickResponse, error) {
	s.mu.Lock() // the engine ticks from one goroutine; this only guards misuse
	defer s.mu.Unlock()
	if s.p == nil {
		return nil, errors.New("coverplugin: Configure was not called")
	}
	return s.tick(s.p, time.Unix(0, req.GetNowUnixNano()), req.GetLinks())
}

// tick runs one policy's Tick; s.mu is held.
func (s *server) tick(p cover.Policy, now time.Time, links []*coverpb.LinkStats) (*coverpb.TickResponse, error) {
	s.links = s.links[:0]
	for _, l := range links {
		s.links = append(s.links, cover.LinkStats{Peer: l.GetPeer(), Queued: int(l.GetQueued()),
			DataSent: l.GetDataSent(), CoverSent: l.GetCoverSent(), DataRecv: l.GetDataRecv(), CoverRecv: l.GetCoverRecv()})
	}
	targets, err := p.Tick(now, s.links)
	if err != nil {
		return nil, err
	}
	if len(targets) != len(s.links) {
		return nil, fmt.Errorf("coverplugin: policy %q returned %d targets for %d links", p.Name(), len(targets), len(s.links))
	}
	resp := &coverpb.TickResponse{Rates: make([]float64, len(targets))}
	for i, t := range targets {
		resp.Rates[i] = t.Rate
		if t.Poisson && resp.Poisson == nil {
			// Sent only when some link asks for it: an all-even answer
			// stays what hosts older than the field understand.
			resp.Poisson = make([]bool, len(targets))
		}
		if resp.Poisson != nil {
			resp.Poisson[i] = t.Poisson
		}
	}
	return resp, nil
}

func (s *server) Close(context.Context, *coverpb.Empty) (*coverpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.p != nil {
		errs = append(errs, s.p.Close())
	}
	for id, ss := range s.sessions {
		errs = append(errs, ss.p.Close())
		delete(s.sessions, id)
	}
	return &coverpb.Empty{}, errors.Join(errs...)
}
