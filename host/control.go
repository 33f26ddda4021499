package host

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
)

// ControlAddrFile is where a running node writes its control API address,
// inside its data directory, so `tarzan status`, `tarzan plugin list` and
// the launchers of local networks find it.
const ControlAddrFile = "control.addr"

// checkControl refuses a control API on a non-loopback address unless the
// configuration allows it, before anything starts.
func checkControl(cfg *config.Config) error {
	if ap, err := netip.ParseAddrPort(cfg.Node.Control); err == nil && !ap.Addr().IsLoopback() && !cfg.Node.AllowRemoteControl {
		return fmt.Errorf("%s: node.control %s is not a loopback address; the control API can build tunnels, so set allow_remote_control = true only if you mean it", cfg.File, cfg.Node.Control)
	}
	return nil
}

// startControl serves the control API on node.control and records its
// address in the data directory.
func (h *Host) startControl(p *plugins) error {
	cfg := h.cfg
	srv := &control.Server{Node: h.node, IP: h.ip, Loops: h.loops, Plugins: p.replies}
	addr, err := srv.Listen(cfg.Node.Control)
	if err != nil {
		return err
	}
	h.push(srv.Close)
	h.ctrl = addr
	file := filepath.Join(cfg.Node.DataDir, ControlAddrFile)
	// Write then rename, so a reader never sees a half-written file.
	if err := writeFileAtomic(file, []byte(addr.String()+"\n")); err != nil {
		h.log.Warn("could not record control address", "file", file, "err", err)
		return nil
	}
	h.push(func() error { os.Remove(file); return nil })
	h.log.Info("control API listening", "addr", addr)
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
