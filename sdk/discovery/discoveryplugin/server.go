package discoveryplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin/internal/discoverypb"
)

// server is the child side: it owns the backend.
type server struct {
	discoverypb.UnimplementedDiscoveryServer
	factory discovery.Factory

	mu sync.Mutex
	d  discovery.Discovery
}

func (s *server) Configure(_ context.Context, req *discoverypb.ConfigureRequest) (*discoverypb.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d != nil {
		return nil, errors.New("discoveryplugin: already configured")
	}
	d, err := s.factory(req.GetOptions())
	if err != nil {
		return nil, fmt.Errorf("discoveryplugin: creating backend: %w", err)
	}
	s.d = d
	return &discoverypb.ConfigureResponse{Name: d.Name()}, nil
}

func (s *server) backend() (discovery.Discovery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return nil, errors.New("discoveryplugin: Configure was not called")
	}
	return s.d, nil
}

func (s *server) Start(_ context.Context, req *discoverypb.StartRequest) (*discoverypb.Empty, error) {
	d, err := s.backend()
	if err != nil {
		return nil, err
	}
	return &discoverypb.Empty{}, d.Start(req.GetSelf())
}

// Next is a blocking unary call: simpler than a stream, and the host
// cancels it through the context. Closed maps to FailedPrecondition so the
// host can return discovery.ErrClosed.
func (s *server) Next(ctx context.Context, _ *discoverypb.Empty) (*discoverypb.NextResponse, error) {
	d, err := s.backend()
	if err != nil {
		return nil, err
	}
	props, err := d.Next(ctx)
	if errors.Is(err, discovery.ErrClosed) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, err
	}
	resp := &discoverypb.NextResponse{Proposals: make([]*discoverypb.Proposal, len(props))}
	for i, p := range props {
		pp := &discoverypb.Proposal{Descriptor_: p.Descriptor, Transport: p.Transport}
		if p.Addr.IsValid() {
			pp.Addr = p.Addr.String()
		}
		resp.Proposals[i] = pp
	}
	return resp, nil
}

func (s *server) Admitted(_ context.Context, req *discoverypb.AdmittedRequest) (*discoverypb.Empty, error) {
	d, err := s.backend()
	if err != nil {
		return nil, err
	}
	return &discoverypb.Empty{}, d.Admitted(req.GetDescriptors())
}

func (s *server) Close(context.Context, *discoverypb.Empty) (*discoverypb.Empty, error) {
	d, err := s.backend()
	if err != nil {
		return &discoverypb.Empty{}, nil
	}
	return &discoverypb.Empty{}, d.Close()
}

// messenger returns the backend as a discovery.Messenger, or
// Unimplemented so that the host returns discovery.ErrNoMessaging.
func (s *server) messenger() (discovery.Messenger, error) {
	d, err := s.backend()
	if err != nil {
		return nil, err
	}
	m, ok := d.(discovery.Messenger)
	if !ok {
		return nil, status.Error(codes.Unimplemented, discovery.ErrNoMessaging.Error())
	}
	return m, nil
}

// Outbox is a blocking unary call like Next.
func (s *server) Outbox(ctx context.Context, _ *discoverypb.Empty) (*discoverypb.Messages, error) {
	m, err := s.messenger()
	if err != nil {
		return nil, err
	}
	msgs, err := m.Outbox(ctx)
	if errors.Is(err, discovery.ErrClosed) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, err
	}
	resp := &discoverypb.Messages{Messages: make([]*discoverypb.Message, len(msgs))}
	for i, msg := range msgs {
		resp.Messages[i] = &discoverypb.Message{Addr: msg.Addr.String(), Transport: msg.Transport, Data: msg.Data}
	}
	return resp, nil
}

// Deliver drops messages whose source address does not parse: they can
// only come from a broken host, and the backend could not answer them.
func (s *server) Deliver(_ context.Context, req *discoverypb.Messages) (*discoverypb.Empty, error) {
	m, err := s.messenger()
	if err != nil {
		return nil, err
	}
	msgs := make([]discovery.Message, 0, len(req.GetMessages()))
	for _, msg := range req.GetMessages() {
		ap, err := netip.ParseAddrPort(msg.GetAddr())
		if err != nil {
			continue
		}
		msgs = append(msgs, discovery.Message{Addr: ap, Transport: msg.GetTransport(), Data: msg.GetData()})
	}
	if len(msgs) == 0 {
		return &discoverypb.Empty{}, nil
	}
	return &discoverypb.Empty{}, m.Deliver(msgs)
}

// StatsReporter may be implemented by a plugin's discovery backend (the
// gossip plugin does): its counters reach the host's PluginStats, and so
// `tarzan status`, `tarzan plugin list` and the metrics.
type StatsReporter interface {
	Stats() map[string]uint64
}

func (s *server) Stats(context.Context, *discoverypb.Empty) (*discoverypb.StatsResponse, error) {
	resp := &discoverypb.StatsResponse{}
	if d, err := s.backend(); err == nil {
		if r, ok := d.(StatsReporter); ok {
			resp.Counters = r.Stats()
		}
	}
	return resp, nil
}
