package control

import (
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/node"
)

// LinkReply is one link of the node, as `wg show` shows a peer: who, since
// when, how much. Ages are seconds before the reply; 0 with the time
// unknown (a link that never came up, a peer never heard).
type LinkReply struct {
	Peer          string  `json:"peer"` // short ID
	Addr          string  `json:"addr,omitempty"`
	Up            bool    `json:"up"`
	HandshakeAgeS float64 `json:"handshake_age_s,omitempty"`
	LastSeenS     float64 `json:"last_seen_s,omitempty"`
	UpForS        float64 `json:"up_for_s,omitempty"`
	RxBytes       uint64  `json:"rx_bytes"`
	TxBytes       uint64  `json:"tx_bytes"`
	RxFrames      uint64  `json:"rx_frames"`
	TxFrames      uint64  `json:"tx_frames"`
	CoverRx       uint64  `json:"cover_rx_frames"`
	CoverTx       uint64  `json:"cover_tx_frames"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

// Status is what GET /v1/status answers.
func (s *Server) Status() StatusReply {
	st := s.Node.Status()
	rep := StatusReply{
		ID: st.ID.String(), Short: st.ID.Short(), Addr: st.Addr.String(), Peers: st.Peers,
		LinksUp: st.LinksUp, Circuits: st.Circuits, Tunnels: st.Tunnels, Counters: st.Counters,
		PID: os.Getpid(), Exit: s.Exit, ControlRefused: s.refused.Load(),
		Links: []LinkReply{}, Drops: map[string]uint64{},
	}
	if !s.Started.IsZero() {
		rep.UptimeS = time.Since(s.Started).Seconds()
	}
	for k, v := range st.Counters {
		if strings.HasPrefix(k, "drop_") && v > 0 {
			rep.Drops[k] = v
		}
	}
	addrs := map[identity.ID]string{}
	for _, m := range st.Mimics {
		rep.Mimics = append(rep.Mimics, MimicReply{ID: m.ID.Short(), Addr: m.Addr.String(), Up: m.Up, Rate: m.Rate})
		if m.Addr.IsValid() {
			addrs[m.ID] = m.Addr.String()
		}
	}
	rep.Links = linkReplies(s.Node.LinkStats(), addrs, time.Now())
	s.loopStatus(&rep)
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
	if s.Plugins != nil {
		rep.Plugins = s.Plugins()
	}
	tl := s.TunnelList()
	rep.OwnTunnels, rep.TunnelTraffic = tl.Tunnels, tl.Totals
	return rep
}

func (s *Server) loopStatus(rep *StatusReply) {
	if s.Loops == nil {
		return
	}
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

func linkReplies(stats []node.LinkStat, addrs map[identity.ID]string, now time.Time) []LinkReply {
	out := make([]LinkReply, 0, len(stats))
	age := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return now.Sub(t).Seconds()
	}
	for _, l := range stats {
		r := LinkReply{
			Peer: l.Peer.Short(), Addr: addrs[l.Peer], Up: l.Up,
			HandshakeAgeS: age(l.Handshake), LastSeenS: age(l.LastRecv),
			RxBytes: l.BytesIn(), TxBytes: l.BytesOut(), RxFrames: l.FramesIn, TxFrames: l.FramesOut,
			CoverRx: l.CoverIn, CoverTx: l.CoverOut,
		}
		if l.Up {
			r.UpForS = age(l.UpSince)
		}
		out = append(out, r)
	}
	return out
}
