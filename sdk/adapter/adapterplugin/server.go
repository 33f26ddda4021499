package adapterplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin/internal/adapterpb"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// server is the child side. After Open two pumps run, as for transports:
//  1. toHost: adapter.ReadPackets → encode → one data-channel message.
//  2. fromHost: one message → decode in place → adapter.WritePackets.
type server struct {
	adapterpb.UnimplementedAdapterServer
	factory adapter.Factory
	data    *net.UnixConn
	shm     *datachan.Shared // nil: socket framing
	log     *slog.Logger

	mu     sync.Mutex
	a      adapter.Adapter
	opened bool
}

func newServer(f adapter.Factory, data *net.UnixConn, shm *datachan.Shared) *server {
	return &server{factory: f, data: data, shm: shm, log: pluginkit.Logger()}
}

func (s *server) Configure(ctx context.Context, req *adapterpb.ConfigureRequest) (*adapterpb.ConfigureResponse, error) {
	if s.shm != nil { // take the host's offer of shared memory
		_ = grpc.SetHeader(ctx, metadata.Pairs(datachan.ShmHeader, datachan.ShmValue))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a != nil {
		return nil, errors.New("adapterplugin: already configured")
	}
	a, err := s.factory(req.GetOptions())
	if err != nil {
		return nil, fmt.Errorf("adapterplugin: creating adapter: %w", err)
	}
	s.a = a
	_, fc := a.(adapter.FlowCloser)
	_, eu := a.(adapter.ExcludeUpdater)
	_, pu := a.(adapter.PolicyUpdater)
	return &adapterpb.ConfigureResponse{Name: a.Name(), Role: string(a.Role()), FlowCloser: fc, ExcludeUpdater: eu, PolicyUpdater: pu}, nil
}

func (s *server) Open(_ context.Context, req *adapterpb.OpenRequest) (*adapterpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a == nil {
		return nil, errors.New("adapterplugin: Configure was not called")
	}
	if s.opened {
		return nil, errors.New("adapterplugin: already open")
	}
	cfg, err := configOf(req)
	if err != nil {
		return nil, err
	}
	if err := s.a.Open(cfg); err != nil {
		return nil, err
	}
	s.opened = true
	if s.shm != nil {
		go s.toHostShm(s.a)
		go s.fromHostShm(s.a)
	} else {
		go s.toHost(s.a)
		go s.fromHost(s.a)
	}
	return &adapterpb.Empty{}, nil
}

func (s *server) toHost(a adapter.Adapter) {
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, maxPacket)
	}
	msg := make([]byte, 0, maxMessage)
	for {
		n, err := a.ReadPackets(pkts)
		if err != nil {
			if !errors.Is(err, adapter.ErrClosed) {
				s.log.Error("adapter read failed; no more packets will reach the host", "err", err)
			}
			return
		}
		for rest := pkts[:n]; len(rest) > 0; {
			m, k, skipped := encode(msg[:0], rest)
			if skipped > 0 {
				s.log.Error("the adapter's ReadPackets returned packets whose N lies outside their buffer; dropped", "packets", skipped)
			}
			rest = rest[k:]
			if k == skipped {
				continue
			}
			if _, err := s.data.Write(m); err != nil {
				return // host gone
			}
		}
	}
}

func (s *server) fromHost(a adapter.Adapter) {
	buf := make([]byte, maxMessage)
	pkts := make([]adapter.Packet, 0, adapter.BatchSize)
	var d decoder
	for {
		m, err := s.data.Read(buf)
		if err != nil {
			return
		}
		if d.reset(buf[:m]) != nil {
			continue
		}
		pkts = pkts[:0]
		for d.left > 0 {
			flow, data, err := d.next()
			if err != nil {
				break
			}
			// Zero copy: WritePackets is done with Buf when it returns.
			pkts = append(pkts, adapter.Packet{Buf: data, N: len(data), Flow: flow})
		}
		for rest := pkts; len(rest) > 0; rest = rest[min(len(rest), adapter.BatchSize):] {
			if _, err := a.WritePackets(rest[:min(len(rest), adapter.BatchSize)]); errors.Is(err, adapter.ErrClosed) {
				return
			}
		}
	}
}

func (s *server) CloseFlow(_ context.Context, req *adapterpb.CloseFlowRequest) (*adapterpb.Empty, error) {
	s.mu.Lock()
	fc, ok := s.a.(adapter.FlowCloser)
	s.mu.Unlock()
	if !ok {
		return &adapterpb.Empty{}, nil
	}
	return &adapterpb.Empty{}, fc.CloseFlow(req.GetFlow())
}

func (s *server) SetExclude(_ context.Context, req *adapterpb.SetExcludeRequest) (*adapterpb.Empty, error) {
	s.mu.Lock()
	eu, ok := s.a.(adapter.ExcludeUpdater)
	s.mu.Unlock()
	if !ok {
		return &adapterpb.Empty{}, nil
	}
	ps, err := prefixes(req.GetPrefixes())
	if err != nil {
		return nil, err
	}
	return &adapterpb.Empty{}, eu.SetExclude(ps)
}

func (s *server) SetExitPolicy(_ context.Context, req *adapterpb.SetExitPolicyRequest) (*adapterpb.Empty, error) {
	s.mu.Lock()
	pu, ok := s.a.(adapter.PolicyUpdater)
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("adapterplugin: the adapter does not take a new exit policy")
	}
	p, err := exitpolicy.Parse(req.GetExitPolicy())
	if err != nil {
		return nil, fmt.Errorf("adapterplugin: exit policy: %w", err)
	}
	return &adapterpb.Empty{}, pu.SetExitPolicy(p)
}

func (s *server) Close(context.Context, *adapterpb.Empty) (*adapterpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a == nil {
		return &adapterpb.Empty{}, nil
	}
	return &adapterpb.Empty{}, s.a.Close()
}
