package host

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/metrics"
)

// ControlAddrFile is where a running node writes its control API address,
// inside its data directory, so `tarzan status`, `tarzan plugin list` and
// the launchers of local networks find it (control.ClientForDir).
const ControlAddrFile = control.AddrFile

// checkControl refuses a control API on a non-loopback address unless the
// configuration allows it, before anything starts.
func checkControl(cfg *config.Config) error {
	if ap, err := netip.ParseAddrPort(cfg.Node.Control); err == nil && !ap.Addr().IsLoopback() && !cfg.Node.AllowRemoteControl {
		return fmt.Errorf("%s: node.control %s is not a loopback address; the control API can build tunnels, so set allow_remote_control = true only if you mean it", cfg.File, cfg.Node.Control)
	}
	return nil
}

// startControl serves the control API on node.control (a Unix socket
// only this user can connect to, or TCP with a cookie) and records its
// address in the data directory.
func (h *Host) startControl(p *plugins) error {
	cfg := h.cfg
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	srv := &control.Server{Node: h.node, IP: h.ip, Loops: h.loops, Plugins: p.controlReplies,
		Exit: cfg.Node.Exit, Started: h.started, PProf: cfg.Node.PProf, Metrics: h.metricsHandler(p)}
	listen := cfg.Node.ControlListen()
	if !strings.HasPrefix(listen, control.UnixPrefix) {
		if err := h.writeCookie(srv); err != nil {
			return err
		}
	}
	addr, err := srv.Listen(listen)
	if err != nil {
		return err
	}
	h.push(srv.Close)
	h.ctrl, h.ctrlSrv = addr, srv
	file := filepath.Join(cfg.Node.DataDir, ControlAddrFile)
	// Write then rename, so a reader never sees a half-written file.
	if err := writeFileAtomic(file, []byte(addr.String()+"\n")); err != nil {
		h.log.Warn("could not record control address", "file", file, "err", err)
		return nil
	}
	h.push(func() error { os.Remove(file); return nil })
	h.log.Info("control API listening", "addr", addr.String(), "pprof", cfg.Node.PProf)
	return nil
}

// writeCookie makes the secret a TCP control API wants with every request
// and stores it, mode 0600, where the owner's tools find it.
func (h *Host) writeCookie(srv *control.Server) error {
	ck, err := control.NewCookie()
	if err != nil {
		return fmt.Errorf("control: making a cookie: %w", err)
	}
	file := filepath.Join(h.cfg.Node.DataDir, control.CookieFile)
	if err := writeFileAtomic(file, []byte(ck+"\n")); err != nil {
		return fmt.Errorf("control: writing the cookie: %w", err)
	}
	h.push(func() error { os.Remove(file); return nil })
	srv.Cookie = ck
	return nil
}

// Control is a client of this host's control API (nil with NoControl).
func (h *Host) Control() *control.Client {
	if h.ctrlSrv == nil {
		return nil
	}
	return &control.Client{Addr: h.ctrl.String(), Cookie: h.ctrlSrv.Cookie}
}

// metricsHandler serves the node's Prometheus metrics: on the control API
// always, and on metrics.listen when set (startMetrics).
func (h *Host) metricsHandler(p *plugins) http.Handler {
	return metrics.Handler(metrics.Source{Node: h.node, IP: h.ip, Plugins: p.metricsPlugins,
		Started: h.started, Exit: h.cfg.Node.Exit})
}

// startMetrics serves GET /metrics, and nothing else, on metrics.listen.
// A request with an Origin header (a web page) is refused, and so is a
// foreign Host unless metrics.allow_remote (DNS rebinding).
func (h *Host) startMetrics(p *plugins) error {
	m := h.cfg.Metrics
	if m.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("metrics: listening on %s: %w", m.Listen, err)
	}
	handler := h.metricsHandler(p)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || (!m.AllowRemote && !loopbackHost(r.Host)) {
			http.Error(w, "refused: Origin header or foreign Host", http.StatusForbidden)
			return
		}
		handler.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	h.push(srv.Close)
	h.metricsAddr = ln.Addr()
	h.log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

// MetricsAddr is where metrics.listen bound; nil when off.
func (h *Host) MetricsAddr() net.Addr { return h.metricsAddr }

func loopbackHost(host string) bool {
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a, err := netip.ParseAddr(host)
	return strings.EqualFold(host, "localhost") || (err == nil && a.Unmap().IsLoopback())
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// metricsPlugins is what the metrics report about the plugins: restarts
// and counters of children (pluginkit), the Stats of in-process ones that
// have them (gossip, pnat, udp).
func (p *plugins) metricsPlugins() []metrics.Plugin {
	var out []metrics.Plugin
	for _, r := range p.running {
		mp := metrics.Plugin{Kind: r.kind, Name: r.name}
		if st, ok := PluginStats(r.v); ok {
			mp.OutOfProcess, mp.Restarts, mp.Counters = true, st.Restarts, st.Counters
		} else if s, ok := r.v.(interface{ Stats() map[string]uint64 }); ok {
			mp.Counters = s.Stats()
		}
		out = append(out, mp)
	}
	return out
}

// controlReplies is what the control API reports about the plugins:
// where each runs (replies) and its own counters, the ones the metrics
// show (metricsPlugins: a child's StatsReporter's and its channel's, an
// in-process plugin's Stats).
func (p *plugins) controlReplies() []control.PluginReply {
	out := p.replies()
	for i, mp := range p.metricsPlugins() {
		if i < len(out) && out[i].Kind == mp.Kind && out[i].Name == mp.Name {
			out[i].Counters = mp.Counters
		}
	}
	return out
}
