package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
)

// Tunnel roles: who built an open tunnel of this node.
const (
	RoleKept = "kept" // built through this API with "keep": true; DELETE closes it
	RoleIP   = "ip"   // the IP service's (SOCKS, TUN clients), by isolation group
	RoleLoop = "loop" // loop cover's
	RoleAPI  = "api"  // built through this API for one request (closed when it ends)
)

// TunnelInfo is one open tunnel of this node, as `wg show` shows a peer:
// its path, age and traffic. What it counts is the packets of its DATA
// cells (what applications sent and received), not the cells of pings or
// building.
type TunnelInfo struct {
	ID        string   `json:"id"`              // the tunnel's local number
	Role      string   `json:"role"`            // RoleKept, RoleIP, RoleLoop, RoleAPI
	Group     uint64   `json:"group"`           // RoleIP: the isolation group it serves
	Spare     bool     `json:"spare,omitempty"` // RoleIP: built ahead of need, serving no group yet
	Hops      []string `json:"hops"`            // short IDs, first hop first; none while rebuilt
	AgeS      float64  `json:"age_s"`
	IdleS     float64  `json:"idle_s"`
	Repairing bool     `json:"repairing,omitempty"`
	RxBytes   uint64   `json:"rx_bytes"`
	TxBytes   uint64   `json:"tx_bytes"`
	RxPackets uint64   `json:"rx_packets"`
	TxPackets uint64   `json:"tx_packets"`
}

// TunnelList is what GET /v1/tunnels answers.
type TunnelList struct {
	Tunnels []TunnelInfo      `json:"tunnels"`
	Totals  TunnelTotalsReply `json:"totals"`
}

// TunnelTotalsReply are the node's sums since it started: its own
// tunnels' DATA, open and closed, and what it carried as an exit.
type TunnelTotalsReply struct {
	Built         uint64 `json:"built"`
	RxBytes       uint64 `json:"rx_bytes"`
	TxBytes       uint64 `json:"tx_bytes"`
	RxPackets     uint64 `json:"rx_packets"`
	TxPackets     uint64 `json:"tx_packets"`
	ExitRxBytes   uint64 `json:"exit_rx_bytes"`
	ExitTxBytes   uint64 `json:"exit_tx_bytes"`
	ExitRxPackets uint64 `json:"exit_rx_packets"`
	ExitTxPackets uint64 `json:"exit_tx_packets"`
}

func totalsReply(t node.TunnelTotals) TunnelTotalsReply {
	return TunnelTotalsReply{
		Built: t.Built, RxBytes: t.BytesIn, TxBytes: t.BytesOut, RxPackets: t.PacketsIn, TxPackets: t.PacketsOut,
		ExitRxBytes: t.ExitBytesIn, ExitTxBytes: t.ExitBytesOut, ExitRxPackets: t.ExitPacketsIn, ExitTxPackets: t.ExitPacketsOut,
	}
}

// TunnelList lists the node's open tunnels with their roles.
func (s *Server) TunnelList() TunnelList {
	now := time.Now()
	kept := map[string]bool{}
	s.mu.Lock()
	for id := range s.kept {
		kept[id] = true
	}
	s.mu.Unlock()
	roles := s.pathRoles()
	out := TunnelList{Tunnels: []TunnelInfo{}, Totals: totalsReply(s.Node.TunnelTotals())}
	for _, st := range s.Node.TunnelStats() {
		ti := TunnelInfo{
			ID: strconv.FormatUint(st.Number, 10), Role: RoleAPI, Hops: shortIDs(st.Hops),
			AgeS: now.Sub(st.Built).Seconds(), IdleS: now.Sub(st.LastUse).Seconds(), Repairing: st.Repairing,
			RxBytes: st.BytesIn, TxBytes: st.BytesOut, RxPackets: st.PacketsIn, TxPackets: st.PacketsOut,
		}
		if kept[ti.ID] {
			ti.Role = RoleKept
		} else if r, ok := roles[pathKey(st.Hops)]; ok {
			ti.Role, ti.Group, ti.Spare = r.role, r.group, r.spare
		}
		out.Tunnels = append(out.Tunnels, ti)
	}
	return out
}

type pathRole struct {
	role  string
	group uint64
	spare bool
}

// pathRoles names the tunnels of the IP service and of loop cover by
// their paths: the services report hops, not the engine's handles.
func (s *Server) pathRoles() map[string]pathRole {
	m := map[string]pathRole{}
	if s.Loops != nil {
		for _, hops := range s.Loops.Tunnels() {
			m[pathKey(hops)] = pathRole{role: RoleLoop}
		}
	}
	if s.IP != nil {
		for _, ct := range s.IP.ClientTunnels() {
			if len(ct.Hops) > 0 {
				m[pathKey(ct.Hops)] = pathRole{role: RoleIP, group: ct.Flow, spare: ct.Spare}
			}
		}
	}
	return m
}

func pathKey(hops []identity.ID) string {
	b := make([]byte, 0, len(hops)*len(identity.ID{}))
	for _, h := range hops {
		b = append(b, h[:]...)
	}
	return string(b)
}

func shortIDs(ids []identity.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Short()
	}
	return out
}

func (s *Server) listTunnels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.TunnelList())
}

// findTunnel is the open tunnel the request's {id} names, or nil after
// answering 404 (or 400 for an id that is no number).
func (s *Server) findTunnel(w http.ResponseWriter, r *http.Request) (*node.Tunnel, bool) {
	id := r.PathValue("id")
	num, err := strconv.ParseUint(id, 10, 64)
	if err != nil || num == 0 {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("tunnel id %q is not a tunnel number (GET /v1/tunnels lists them)", id))
		return nil, false
	}
	s.mu.Lock()
	t, kept := s.kept[id]
	s.mu.Unlock()
	if t == nil {
		t = s.Node.TunnelByNumber(num)
	}
	if t == nil || t.Closed() {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no open tunnel %s (GET /v1/tunnels lists them)", id))
		return nil, false
	}
	return t, kept
}

func (s *Server) pingTunnel(w http.ResponseWriter, r *http.Request) {
	var req PingRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("decoding request: %w", err))
			return
		}
	}
	if req.Pings <= 0 {
		req.Pings = 1
	}
	if req.Pings > 100 {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("pings %d: at most 100 per request", req.Pings))
		return
	}
	t, _ := s.findTunnel(w, r)
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	hops, err := pingHops(ctx, t, req.Pings, true)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, TunnelReply{ID: r.PathValue("id"), Number: t.Number(), SetupMS: ms(t.SetupTime()), Hops: hops})
}

func (s *Server) closeTunnel(w http.ResponseWriter, r *http.Request) {
	t, kept := s.findTunnel(w, r)
	if t == nil {
		return
	}
	if !kept {
		writeErr(w, http.StatusConflict, fmt.Errorf("tunnel %s was not built through this API with keep (its owner, e.g. the IP service, closes it): only kept tunnels can be closed here", r.PathValue("id")))
		return
	}
	s.mu.Lock()
	delete(s.kept, r.PathValue("id"))
	s.mu.Unlock()
	t.Close()
	writeJSON(w, http.StatusOK, TunnelReply{ID: r.PathValue("id"), Number: t.Number()})
}

// pingHops pings every hop of t pings times. With tolerate a ping that
// times out is counted lost; otherwise, and for a tunnel that closed, the
// first failure ends it.
func pingHops(ctx context.Context, t *node.Tunnel, pings int, tolerate bool) ([]HopReply, error) {
	var out []HopReply
	for i, h := range t.Hops() {
		hr := HopReply{ID: h.ID.Short(), Addr: h.Addr.String(), Domain: h.Domain.String()}
		rtts := make([]time.Duration, 0, pings)
		for k := 0; k < pings; k++ {
			rtt, err := t.Ping(ctx, i)
			if err != nil {
				if !tolerate || errors.Is(err, node.ErrTunnelClosed) || ctx.Err() != nil {
					return nil, fmt.Errorf("pinging hop %d: %w", i+1, err)
				}
				hr.Lost++
				continue
			}
			rtts = append(rtts, rtt)
			hr.RTTsMS = append(hr.RTTsMS, ms(rtt))
		}
		hr.RTTMS = ms(median(rtts))
		out = append(out, hr)
	}
	return out, nil
}
