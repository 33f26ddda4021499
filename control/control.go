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
//	GET  /v1/tunnels         this node's open tunnels: hops, age, bytes
//	POST /v1/tunnels/{id}/ping  {"pings":1} ping every hop of an open tunnel
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
	// OwnTunnels are this node's open tunnels with their age and traffic
	// (GET /v1/tunnels); TunnelTraffic the sums since the node started.
	OwnTunnels    []TunnelInfo      `json:"own_tunnels"`
	TunnelTraffic TunnelTotalsReply `json:"tunnel_traffic"`
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
	// Counters are the plugin's own: what its StatsReporter (or, in
	// process, its Stats method) reports, and for a child the host side's
	// counters of its channel (host_*, plugin_*).
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// TunnelRequest asks the node to build a tunnel.
type TunnelRequest struct {
	Hops  int      `json:"hops"`
	Pings int      `json:"pings"`          // pings per hop; the reply gives the median
	Path  []string `json:"path,omitempty"` // explicit hop IDs (hex), optional
	Keep  bool     `json:"keep,omitempty"` // keep the tunnel open afterwards
}

// TunnelReply reports a built tunnel, or the pings of an open one.
type TunnelReply struct {
	ID string `json:"id,omitempty"` // set for kept tunnels: the tunnel's number, for ping and DELETE
	// Number is the tunnel's local number (the ID of a kept one), as
	// GET /v1/tunnels and the status list it.
	Number  uint64     `json:"number,omitempty"`
	SetupMS float64    `json:"setup_ms"`
	Hops    []HopReply `json:"hops"`
}

// HopReply is one hop of a tunnel.
type HopReply struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr"`
	Domain string  `json:"domain"`
	RTTMS  float64 `json:"rtt_ms"` // the median of RTTsMS; 0 when every ping was lost
	// RTTsMS are the round trips of the pings that came back, in the
	// order sent; Lost counts the ones that did not (within 5 s).
	RTTsMS []float64 `json:"rtts_ms,omitempty"`
	Lost   int       `json:"lost,omitempty"`
}

// PingRequest is the optional body of POST /v1/tunnels/{id}/ping.
type PingRequest struct {
	Pings int `json:"pings"` // pings per hop, 1..100; default 1
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
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return ln.Addr(), nil
}

// Handler serves the API (guarded: Origin, Host, cookie) without a
// listener of its own; Listen serves it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/tunnels", s.tunnels)
	mux.HandleFunc("GET /v1/tunnels", s.listTunnels)
	mux.HandleFunc("POST /v1/tunnels/{id}/ping", s.pingTunnel)
	mux.HandleFunc("DELETE /v1/tunnels/{id}", s.closeTunnel)
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
	return s.guard(mux)
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
	if err := checkTunnelRequest(req); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
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
	rep := TunnelReply{SetupMS: ms(t.SetupTime()), Number: t.Number()}
	if req.Keep {
		s.mu.Lock()
		if s.kept == nil {
			s.kept = map[string]*node.Tunnel{}
		}
		rep.ID = strconv.FormatUint(t.Number(), 10)
		s.kept[rep.ID] = t
		s.reserved--
		s.mu.Unlock()
	} else {
		defer t.Close()
	}
	hops, err := pingHops(ctx, t, req.Pings, false)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	rep.Hops = hops
	writeJSON(w, http.StatusOK, rep)
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
