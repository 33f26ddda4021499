// Package control is a node's local HTTP+JSON control API, used by
// `tarzan status`, `tarzan demo` and scripts. It listens on loopback by
// default: it can build tunnels, so it must not face the network.
//
//	GET  /v1/status          node status (peers, mimics, links, counters)
//	POST /v1/tunnels         {"hops":3,"pings":1,"keep":false} build a tunnel, ping every hop, report
//	POST /v1/tunnels/{id}/ping  ping every hop of a kept tunnel again
//	DELETE /v1/tunnels/{id}  tear a kept tunnel down
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
)

// StatusReply is the JSON form of node.Status, with the IP service's and
// loop cover's status beside it (Server.IP, Server.Loops).
type StatusReply struct {
	ID       string            `json:"id"`
	Short    string            `json:"short_id"`
	Addr     string            `json:"addr"`
	Peers    int               `json:"peers"`
	Mimics   []MimicReply      `json:"mimics"`
	LinksUp  int               `json:"links_up"`
	Circuits int               `json:"circuits"`
	Tunnels  int               `json:"tunnels"`
	Counters map[string]uint64 `json:"counters"`
	// LoopRTTMS is the median round trip of recent loops (loop cover:
	// counters loops_sent, loops_returned, loops_lost, loop_alerts).
	LoopRTTMS float64 `json:"loop_rtt_ms,omitempty"`
	// LoopTunnels are the hops of the loop tunnels in use, first hop
	// first, by short ID only (as the loop alert names them): no
	// addresses.
	LoopTunnels [][]string `json:"loop_tunnels,omitempty"`
	// ClientTunnels are the IP service client's tunnels (ipservice.ClientTunnels),
	// hops by short ID, first hop first.
	ClientTunnels []ClientTunnelReply `json:"client_tunnels,omitempty"`
	PID           int                 `json:"pid"`
	Plugins       []PluginReply       `json:"plugins,omitempty"`
}

// ClientTunnelReply is one tunnel of the IP service's client side.
type ClientTunnelReply struct {
	Hops      []string `json:"hops"`
	Flow      uint64   `json:"flow"`
	Spare     bool     `json:"spare"`
	TCPFlows  int      `json:"tcp_flows"`
	Repairing bool     `json:"repairing"`
	IdleMS    float64  `json:"idle_ms"`
}

// MimicReply is one mimic link.
type MimicReply struct {
	ID   string  `json:"id"`
	Addr string  `json:"addr"`
	Up   bool    `json:"up"`
	Rate float64 `json:"rate"`
}

// PluginReply describes one plugin of the node.
type PluginReply struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	InProc   bool   `json:"inprocess"`
	PID      int    `json:"pid,omitempty"`
	Restarts uint64 `json:"restarts"`
}

// TunnelRequest asks the node to build a tunnel.
type TunnelRequest struct {
	Hops  int      `json:"hops"`
	Pings int      `json:"pings"`          // pings per hop; the reply gives the median
	Path  []string `json:"path,omitempty"` // explicit hop IDs (hex), optional
	Keep  bool     `json:"keep,omitempty"` // keep the tunnel open afterwards
}

// TunnelReply reports a built tunnel.
type TunnelReply struct {
	ID      string     `json:"id,omitempty"` // set for kept tunnels
	SetupMS float64    `json:"setup_ms"`
	Hops    []HopReply `json:"hops"`
}

// HopReply is one hop of a tunnel.
type HopReply struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr"`
	Domain string  `json:"domain"`
	RTTMS  float64 `json:"rtt_ms"`
}

// Server serves the control API for one node.
type Server struct {
	Node *node.Node
	// IP and Loops are the node's IP service and loop cover, when it runs
	// them: the status shows their tunnels and loop round trips beside the
	// engine's facts.
	IP      *ipservice.Service
	Loops   *loopcover.Prober
	Plugins func() []PluginReply // optional
	srv     *http.Server
	ln      net.Listener

	mu     sync.Mutex
	kept   map[string]*node.Tunnel
	nextID int
}

// Listen binds the API; addr "127.0.0.1:0" picks a free port.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", addr, err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/tunnels", s.tunnels)
	mux.HandleFunc("POST /v1/tunnels/{id}/ping", s.pingKept)
	mux.HandleFunc("DELETE /v1/tunnels/{id}", s.closeKept)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return ln.Addr(), nil
}

// Close stops the API.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.Node.Status()
	rep := StatusReply{
		ID: st.ID.String(), Short: st.ID.Short(), Addr: st.Addr.String(), Peers: st.Peers,
		LinksUp: st.LinksUp, Circuits: st.Circuits, Tunnels: st.Tunnels, Counters: st.Counters,
		PID: os.Getpid(),
	}
	if s.Loops != nil {
		rtt, _ := s.Loops.RTT()
		rep.LoopRTTMS = float64(rtt) / float64(time.Millisecond)
		for _, hops := range s.Loops.Tunnels() {
			ids := make([]string, len(hops))
			for i, h := range hops {
				ids[i] = h.Short()
			}
			rep.LoopTunnels = append(rep.LoopTunnels, ids)
		}
	}
	var clientTunnels []ipservice.ClientTunnelStatus
	if s.IP != nil {
		clientTunnels = s.IP.ClientTunnels()
	}
	for _, ct := range clientTunnels {
		r := ClientTunnelReply{Hops: []string{}, Flow: ct.Flow, Spare: ct.Spare, TCPFlows: ct.TCPFlows,
			Repairing: ct.Repairing, IdleMS: float64(ct.Idle) / float64(time.Millisecond)}
		for _, h := range ct.Hops {
			r.Hops = append(r.Hops, h.Short())
		}
		rep.ClientTunnels = append(rep.ClientTunnels, r)
	}
	for _, m := range st.Mimics {
		rep.Mimics = append(rep.Mimics, MimicReply{ID: m.ID.Short(), Addr: m.Addr.String(), Up: m.Up, Rate: m.Rate})
	}
	if s.Plugins != nil {
		rep.Plugins = s.Plugins()
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) tunnels(w http.ResponseWriter, r *http.Request) {
	var req TunnelRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("decoding request: %w", err))
		return
	}
	if req.Hops == 0 {
		req.Hops = node.DefaultTunnelHops
	}
	if req.Pings <= 0 {
		req.Pings = 1
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	t, err := buildTunnel(ctx, s.Node, req)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	rep := TunnelReply{SetupMS: ms(t.SetupTime())}
	if req.Keep {
		s.mu.Lock()
		if s.kept == nil {
			s.kept = map[string]*node.Tunnel{}
		}
		s.nextID++
		rep.ID = strconv.Itoa(s.nextID)
		s.kept[rep.ID] = t
		s.mu.Unlock()
	} else {
		defer t.Close()
	}
	hops, err := pingHops(ctx, t, req.Pings)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	rep.Hops = hops
	writeJSON(w, http.StatusOK, rep)
}

func pingHops(ctx context.Context, t *node.Tunnel, pings int) ([]HopReply, error) {
	var out []HopReply
	for i, h := range t.Hops() {
		rtts := make([]time.Duration, 0, pings)
		for k := 0; k < pings; k++ {
			rtt, err := t.Ping(ctx, i)
			if err != nil {
				return nil, fmt.Errorf("pinging hop %d: %w", i+1, err)
			}
			rtts = append(rtts, rtt)
		}
		out = append(out, HopReply{
			ID: h.ID.Short(), Addr: h.Addr.String(), Domain: h.Domain.String(), RTTMS: ms(median(rtts)),
		})
	}
	return out, nil
}

func (s *Server) keptTunnel(w http.ResponseWriter, r *http.Request) *node.Tunnel {
	s.mu.Lock()
	t := s.kept[r.PathValue("id")]
	s.mu.Unlock()
	if t == nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no kept tunnel %q", r.PathValue("id")))
	}
	return t
}

func (s *Server) pingKept(w http.ResponseWriter, r *http.Request) {
	t := s.keptTunnel(w, r)
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	hops, err := pingHops(ctx, t, 1)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, TunnelReply{ID: r.PathValue("id"), SetupMS: ms(t.SetupTime()), Hops: hops})
}

func (s *Server) closeKept(w http.ResponseWriter, r *http.Request) {
	t := s.keptTunnel(w, r)
	if t == nil {
		return
	}
	s.mu.Lock()
	delete(s.kept, r.PathValue("id"))
	s.mu.Unlock()
	t.Close()
	writeJSON(w, http.StatusOK, TunnelReply{ID: r.PathValue("id")})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type errorReply struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorReply{Error: err.Error()})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ErrAPI wraps errors reported by a node's control API.
var ErrAPI = errors.New("control API")
