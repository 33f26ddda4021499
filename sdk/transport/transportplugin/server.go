package transportplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin/internal/transportpb"
)

// server is the child side. After Listen two pumps run:
//  1. toHost: transport.ReadBatch → headers gathered with the packets'
//     buffers → one data-channel message (one writev, no copy here).
//  2. fromHost: one data-channel message → decode in place → WriteBatch.
//
// Each pump owns its buffers: nothing is allocated per batch.
type server struct {
	transportpb.UnimplementedTransportServer
	factory transport.Factory
	data    *net.UnixConn
	shm     *datachan.Shared // nil: socket framing
	log     *slog.Logger

	mu sync.Mutex
	t  transport.Transport

	batchesIn, packetsIn   atomic.Uint64 // network → host
	batchesOut, packetsOut atomic.Uint64 // host → network
	writeErrors, malformed atomic.Uint64
}

// StatsReporter may be implemented by a plugin's Transport; its counters
// are merged into what the host's PluginStats reports.
type StatsReporter interface {
	Stats() map[string]uint64
}

func newServer(f transport.Factory, data *net.UnixConn, shm *datachan.Shared) *server {
	return &server{factory: f, data: data, shm: shm, log: pluginkit.Logger()}
}

func (s *server) Configure(ctx context.Context, req *transportpb.ConfigureRequest) (*transportpb.ConfigureResponse, error) {
	if s.shm != nil { // take the host's offer of shared memory
		_ = grpc.SetHeader(ctx, metadata.Pairs(datachan.ShmHeader, datachan.ShmValue))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t != nil {
		return nil, errors.New("transportplugin: already configured")
	}
	t, err := s.factory(req.GetOptions())
	if err != nil {
		return nil, fmt.Errorf("transportplugin: creating transport: %w", err)
	}
	s.t = t
	return &transportpb.ConfigureResponse{Name: t.Name(), Interfaces: interfacesOf(t)}, nil
}

func (s *server) transport() (transport.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t == nil {
		return nil, errors.New("transportplugin: Configure was not called")
	}
	return s.t, nil
}

func (s *server) Listen(_ context.Context, req *transportpb.ListenRequest) (*transportpb.ListenResponse, error) {
	t, err := s.transport()
	if err != nil {
		return nil, err
	}
	addr, err := netip.ParseAddrPort(req.GetAddr())
	if err != nil {
		return nil, fmt.Errorf("transportplugin: bad listen address: %w", err)
	}
	bound, err := t.Listen(addr)
	if err != nil {
		return nil, err
	}
	// The pumps live as long as the process: the host kills it to stop.
	if s.shm != nil {
		go s.toHostShm(t)
		go s.fromHostShm(t)
	} else {
		go s.toHost(t)
		go s.fromHost(t)
	}
	return &transportpb.ListenResponse{Bound: bound.String()}, nil
}

func (s *server) toHost(t transport.Transport) {
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, maxPayload)
	}
	g := newGatherer()
	for {
		n, err := t.ReadBatch(pkts)
		if err != nil {
			if !errors.Is(err, transport.ErrClosed) {
				s.log.Error("transport read failed; no more packets will reach the host", "err", err)
			}
			return
		}
		s.batchesIn.Add(1)
		s.packetsIn.Add(uint64(n))
		for rest := pkts[:n]; len(rest) > 0; {
			k, err := g.gather(rest)
			if err != nil { // cannot happen: our buffers are maxPayload
				s.log.Error("dropping received batch", "err", err)
				break
			}
			if err := g.writeTo(s.data); err != nil {
				return // host gone; it kills us or we exit with our parent
			}
			rest = rest[k:]
		}
	}
}

func (s *server) fromHost(t transport.Transport) {
	buf := make([]byte, datachan.MaxMessage)
	pkts := make([]transport.Packet, 0, transport.BatchSize)
	var d decoder
	for {
		m, err := s.data.Read(buf)
		if err != nil {
			return
		}
		if d.reset(buf[:m]) != nil {
			s.malformed.Add(1)
			continue
		}
		pkts = pkts[:0]
		for d.left > 0 {
			addr, data, err := d.next()
			if err != nil {
				s.malformed.Add(1)
				break
			}
			// Zero copy: WriteBatch must be done with Buf when it returns.
			pkts = append(pkts, transport.Packet{Addr: addr, Buf: data, N: len(data)})
			if len(pkts) == cap(pkts) || d.left == 0 {
				s.write(t, pkts)
				pkts = pkts[:0]
			}
		}
		if len(pkts) > 0 {
			s.write(t, pkts)
		}
	}
}

func (s *server) write(t transport.Transport, pkts []transport.Packet) {
	s.batchesOut.Add(1)
	s.packetsOut.Add(uint64(len(pkts)))
	if err := t.WriteBatch(pkts); err != nil {
		// Best effort like UDP; the host learns of it through Stats.
		s.writeErrors.Add(1)
	}
}

func (s *server) Stats(context.Context, *transportpb.Empty) (*transportpb.StatsResponse, error) {
	c := map[string]uint64{
		"plugin_batches_in":   s.batchesIn.Load(),
		"plugin_packets_in":   s.packetsIn.Load(),
		"plugin_batches_out":  s.batchesOut.Load(),
		"plugin_packets_out":  s.packetsOut.Load(),
		"plugin_write_errors": s.writeErrors.Load(),
		"plugin_malformed":    s.malformed.Load(),
	}
	if t, err := s.transport(); err == nil {
		if r, ok := t.(StatsReporter); ok {
			for k, v := range r.Stats() {
				c[k] = v
			}
		}
	}
	return &transportpb.StatsResponse{Counters: c}, nil
}

func (s *server) Close(context.Context, *transportpb.Empty) (*transportpb.Empty, error) {
	t, err := s.transport()
	if err != nil {
		return &transportpb.Empty{}, nil
	}
	return &transportpb.Empty{}, t.Close()
}
