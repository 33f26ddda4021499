// Package control is a node's local HTTP+JSON control API, used by
// `tarzan status`, `tarzan demo` and scripts. Only the node's owner can
// use it: by default it is a Unix socket in the data directory (mode
// 0600); on TCP (loopback unless allowed otherwise) every request must
// carry the cookie the node writes to its data directory (mode 0600).
// Requests with an Origin header or a foreign Host are refused, so a web
// page cannot reach it (docs/CONTROL.md).
//
//	GET  /v1/status          node status (links, tunnels, counters)
//	POST /v1/tunnels         {"hops":3,"pings":1,"keep":false} build a tunnel, ping every hop, report
//	POST /v1/tunnels/{id}/ping  ping every hop of a kept tunnel again
//	DELETE /v1/tunnels/{id}  tear a kept tunnel down
//	GET  /metrics            Prometheus metrics (when the node serves them)
//	GET  /debug/pprof/       Go profiles (node.pprof = true only)
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// UptimeS is how long the node has run, in seconds; Exit whether it
	// exits traffic to the Internet.
	UptimeS float64 `json:"uptime_s"`
	Exit    bool    `json:"exit"`
	// Links are this node's links to its mimics with their traffic, like
	// `wg show`'s peers (status.go).
	Links []LinkReply `json:"links"`
	// Drops are the counters of what was dropped (drop_*) that are not
	// zero; Counters has them too.
	Drops map[string]uint64 `json:"drops"`
	// ControlRefused counts requests this API refused (Origin, Host,
	// cookie).
	ControlRefused uint64 `json:"control_refused"`
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
	// Cookie, if set, must come in CookieHeader with every request (a TCP
	// listener); a Unix socket's file mode admits its owner only.
	Cookie string
	// MaxKept bounds the tunnels kept open at once; 0: DefaultMaxKept.
	MaxKept int
	// Metrics, if set, serves GET /metrics.
	Metrics http.Handler
	// PProf serves Go's profiles under /debug/pprof/.
	PProf bool
	// Exit and Started are shown in the status: whether this node exits,
	// and when it started (uptime).
	Exit    bool
	Started time.Time

	srv     *http.Server
	ln      net.Listener
	refused atomic.Uint64 // requests guard turned away

	mu       sync.Mutex
	kept     map[string]*node.Tunnel
	reserved int // kept tunnels being built
	nextID   int
}

func (s *Server) maxKept() int {
	if s.MaxKept > 0 {
		return s.MaxKept
	}
	return DefaultMaxKept
}

// reserveKept takes a place for a tunnel to keep, if one is free.
func (s *Server) reserveKept() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.kept {
		if t.Closed() { // idle timeout or a failure closed it: its place is free
			delete(s.kept, id)
		}
	}
	if len(s.kept)+s.reserved >= s.maxKept() {
		return false
	}
	s.reserved++
	return true
}

func (s *Server) releaseKept() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// Listen binds the API: "unix:PATH" a Unix socket only this user can
// connect to, "127.0.0.1:0" a free TCP port (set Cookie then).
func (s *Server) Listen(addr string) (net.Addr, error) {
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		ln, err = listenUnix(path)
	} else if ln, err = net.Listen("tcp", addr); err != nil {
		err = fmt.Errorf("control: listening on %s: %w", addr, err)
	}
	if err != nil {
		return nil, err
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/tunnels", s.tunnels)
	mux.HandleFunc("POST /v1/tunnels/{id}/ping", s.pingKept)
	mux.HandleFunc("DELETE /v1/tunnels/{id}", s.closeKept)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	if s.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: s.guard(mux), ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return ln.Addr(), nil
}

// Refused counts the requests turned away (Origin, Host or cookie).
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Close stops the API.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	// Serve may not have taken the listener yet: close it here too, so
	// that the socket file is gone when Close returns.
	s.ln.Close()
	return err
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
	if req.Keep && !s.reserveKept() {
		writeErr(w, http.StatusTooManyRequests, fmt.Errorf("%d tunnels are kept already, the most this node keeps: close one (DELETE /v1/tunnels/ID) first", s.maxKept()))
		return
	}
	t, err := buildTunnel(ctx, s.Node, req)
	if err != nil {
		if req.Keep {
			s.releaseKept()
		}
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
		s.reserved--
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
