package adapterplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin/internal/adapterpb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// server is the child side. After Open two pumps run, as for transports:
//  1. toHost: adapter.ReadPackets → encode → one data-channel message.
//  2. fromHost: one message → decode in place → adapter.WritePackets.
type server struct {
	adapterpb.UnimplementedAdapterServer
	factory adapter.Factory
	data    *net.UnixConn
	log     *slog.Logger

	mu     sync.Mutex
	a      adapter.Adapter
	opened bool
}

func newServer(f adapter.Factory, data *net.UnixConn) *server {
	return &server{factory: f, data: data, log: pluginkit.Logger()}
}

func (s *server) Configure(_ context.Context, req *adapterpb.ConfigureRequest) (*adapterpb.ConfigureResponse, error) {
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
	return &adapterpb.ConfigureResponse{Name: a.Name(), Role: string(a.Role())}, nil
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
	cfg := adapter.Config{MTU: int(req.GetMtu()), Options: req.GetOptions()}
	var err error
	if cfg.Addresses, err = prefixes(req.GetAddresses()); err != nil {
		return nil, err
	}
	if cfg.Exclude, err = prefixes(req.GetExclude()); err != nil {
		return nil, err
	}
	if err := s.a.Open(cfg); err != nil {
		return nil, err
	}
	s.opened = true
	go s.toHost(s.a)
	go s.fromHost(s.a)
	return &adapterpb.Empty{}, nil
}

func prefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("adapterplugin: bad prefix: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *server) toHost(a adapter.Adapter) {
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, maxPacket)
	}
	sizes := make([]int, batchSize)
	views := make([][]byte, batchSize)
	msg := make([]byte, 0, maxMessage)
	for {
		n, err := a.ReadPackets(bufs, sizes, 0)
		if err != nil {
			if !errors.Is(err, adapter.ErrClosed) {
				s.log.Error("adapter read failed; no more packets will reach the host", "err", err)
			}
			return
		}
		for i := range n {
			views[i] = bufs[i][:sizes[i]]
		}
		for rest := views[:n]; len(rest) > 0; {
			m, k, err := encode(msg[:0], rest, 0)
			if err != nil {
				s.log.Error("dropping read packets", "err", err)
				break
			}
			if _, err := s.data.Write(m); err != nil {
				return // host gone
			}
			rest = rest[k:]
		}
	}
}

func (s *server) fromHost(a adapter.Adapter) {
	buf := make([]byte, maxMessage)
	views := make([][]byte, 0, batchSize)
	var d decoder
	for {
		m, err := s.data.Read(buf)
		if err != nil {
			return
		}
		if d.reset(buf[:m]) != nil {
			continue
		}
		views = views[:0]
		for d.left > 0 {
			p, err := d.next()
			if err != nil {
				break
			}
			views = append(views, p) // zero copy: WritePackets is done with it on return
		}
		if len(views) > 0 {
			if _, err := a.WritePackets(views, 0); err != nil && errors.Is(err, adapter.ErrClosed) {
				return
			}
		}
	}
}

func (s *server) Close(context.Context, *adapterpb.Empty) (*adapterpb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.a == nil {
		return &adapterpb.Empty{}, nil
	}
	return &adapterpb.Empty{}, s.a.Close()
}
