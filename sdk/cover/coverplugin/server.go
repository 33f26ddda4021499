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
	resp := &coverpb.ConfigureResponse{Name: p.Name(), IntervalNs: int64(p.Interval())}
	if l, ok := p.(cover.Looper); ok {
		resp.LoopRate = l.Loops().Rate
	}
	return resp, nil
}

func (s *server) Tick(_ context.Context, req *coverpb.TickRequest) (*coverpb.TickResponse, error) {
	s.mu.Lock() // the engine ticks from one goroutine; this only guards misuse
	defer s.mu.Unlock()
	if s.p == nil {
		return nil, errors.New("coverplugin: Configure was not called")
	}
	s.links = s.links[:0]
	for _, l := range req.GetLinks() {
		s.links = append(s.links, cover.LinkStats{Peer: l.GetPeer(), Queued: int(l.GetQueued()),
			DataSent: l.GetDataSent(), CoverSent: l.GetCoverSent(), DataRecv: l.GetDataRecv(), CoverRecv: l.GetCoverRecv()})
	}
	targets, err := s.p.Tick(time.Unix(0, req.GetNowUnixNano()), s.links)
	if err != nil {
		return nil, err
	}
	if len(targets) != len(s.links) {
		return nil, fmt.Errorf("coverplugin: policy %q returned %d targets for %d links", s.p.Name(), len(targets), len(s.links))
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
	if s.p == nil {
		return &coverpb.Empty{}, nil
	}
	return &coverpb.Empty{}, s.p.Close()
}
