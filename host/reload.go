package host

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// NewLogger makes the node's logger: format "json" writes one JSON object
// a line, anything else text; level is read through the returned LevelVar,
// which Reload sets when node.log_level changes.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err == nil {
		lv.Set(l)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// Reload re-reads the node's configuration file (SIGHUP): what can change
// while the node runs is applied (node.log_level, exit.policy, and the
// cover policy: [cover]'s name, path, sha256, in_process and options),
// what cannot is named with "needs a restart". A file that does not load leaves the running
// configuration as it is, and the error names file, line and key. Every
// outcome is logged; the error is returned as well.
func (h *Host) Reload() error {
	path := h.cfg.File
	if path == "" {
		return fmt.Errorf("reload: the configuration was not read from a file")
	}
	next, err := config.Load(path)
	if err != nil {
		h.log.Error("reload failed; the running configuration stays as it was", "err", err)
		return err
	}
	applied, restart := h.apply(next)
	if len(applied) == 0 && len(restart) == 0 {
		h.log.Info("reloaded: nothing changed", "file", path)
		return nil
	}
	h.log.Info("reloaded", "file", path, "applied", strings.Join(applied, " "), "needs_restart", strings.Join(restart, " "))
	return nil
}

// apply makes next the running configuration where it can and reports
// the keys it applied and those that take a restart.
func (h *Host) apply(next *config.Config) (applied, restart []string) {
	cur := h.cfg
	if next.Node.LogLevel != cur.Node.LogLevel {
		var l slog.Level
		if h.level != nil && l.UnmarshalText([]byte(next.Node.LogLevel)) == nil {
			h.level.Set(l)
			applied = append(applied, "node.log_level="+next.Node.LogLevel)
		} else {
			restart = append(restart, "node.log_level")
		}
	}
	// What was applied is now the running configuration; the rest keeps
	// its running value, so a later reload reports it again.
	upd := *cur
	upd.Node.LogLevel = next.Node.LogLevel
	if h.level == nil {
		upd.Node.LogLevel = cur.Node.LogLevel
	}
	if a, r := h.applyExitPolicy(next); a != "" {
		applied = append(applied, a)
		upd.Exit.Policy = next.Exit.Policy
		restart = append(restart, r...)
	} else {
		restart = append(restart, r...)
	}
	if a, r := h.applyCover(next); a != "" {
		applied = append(applied, a)
		upd.Cover.Plugin = next.Cover.Plugin
		restart = append(restart, r...)
	} else {
		restart = append(restart, r...)
	}
	restart = append(restart, changedKeys(&upd, next)...)
	h.cfg = &upd
	return applied, restart
}

// applyExitPolicy puts next's exit policy in force when it differs from
// the running one: the core checks it from the next packet on and
// publishes it in a new descriptor, and the exit adapter's own check
// follows when the adapter takes a new policy (adapter.PolicyUpdater).
// It returns what it applied ("" for nothing) and what still needs a
// restart.
func (h *Host) applyExitPolicy(next *config.Config) (applied string, restart []string) {
	cur := h.cfg
	if !cur.Node.Exit || !next.Node.Exit || slices.Equal(cur.Exit.Policy, next.Exit.Policy) || h.node == nil {
		return "", nil
	}
	pol := exitpolicy.Default()
	if len(next.Exit.Policy) > 0 {
		var err error
		if pol, err = exitpolicy.Parse(next.Exit.Policy); err != nil {
			h.log.Error("reload: exit.policy not applied", "file", next.File, "err", err)
			return "", []string{"exit.policy"}
		}
	}
	if err := h.node.SetExitPolicy(pol); err != nil {
		h.log.Error("reload: exit.policy not applied", "err", err)
		return "", []string{"exit.policy"}
	}
	h.policy = pol
	if pu, ok := h.plugins.exit.(adapter.PolicyUpdater); ok {
		if err := pu.SetExitPolicy(pol); err != nil {
			// The core enforces the new policy on every packet already;
			// the adapter's second check keeps the old one.
			h.log.Warn("reload: the exit adapter keeps its old exit policy until the node restarts; the core enforces the new one", "adapter", h.cfg.Exit.Name, "err", err)
			restart = append(restart, "exit.policy (at the exit adapter)")
		}
	} else if h.plugins.exit != nil {
		restart = append(restart, "exit.policy (at the exit adapter)")
	}
	return fmt.Sprintf("exit.policy=%q", strings.Join(next.Exit.Policy, "; ")), restart
}

// applyCover opens next's cover policy when [cover]'s plugin or options
// changed, swaps it in for the running one (swapCover) and closes the
// old one. Loop cover keeps the rate it read at start, so a change in the
// loops a policy asks for takes a restart; so do the loop_* keys.
func (h *Host) applyCover(next *config.Config) (applied string, restart []string) {
	cur := h.cfg
	s, ok := h.plugins.cover.(swapper)
	if reflect.DeepEqual(cur.Cover.Plugin, next.Cover.Plugin) || !ok {
		return "", nil
	}
	pol, err := openCover(h.cat, next)
	if err != nil {
		h.log.Error("reload: the cover policy was not changed", "err", err)
		return "", []string{"[cover]"}
	}
	if loopsOf(pol) != loopsOf(s.current()) {
		restart = append(restart, "cover loops (the policy's loop rate)")
	}
	s.swap(pol).Close()
	h.log.Info("reload: cover policy swapped", "policy", pol.Name(), "interval", pol.Interval())
	return "cover=" + next.Cover.Name, restart
}

// loopsOf is the loop cover a policy asks for (none: the zero value).
func loopsOf(p cover.Policy) cover.Loops {
	if l, ok := p.(cover.Looper); ok {
		return l.Loops()
	}
	return cover.Loops{}
}

// changedKeys names what differs between a and b other than the log
// level: the [node] keys one by one, other sections whole.
func changedKeys(a, b *config.Config) []string {
	var out []string
	an, bn := reflect.ValueOf(a.Node), reflect.ValueOf(b.Node)
	for i := 0; i < an.NumField(); i++ {
		name := an.Type().Field(i).Name
		if name != "LogLevel" && !reflect.DeepEqual(an.Field(i).Interface(), bn.Field(i).Interface()) {
			out = append(out, "node."+snake(name))
		}
	}
	av, bv := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := 0; i < av.NumField(); i++ {
		name := av.Type().Field(i).Name
		if name == "File" || name == "Node" {
			continue
		}
		if !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			out = append(out, "["+strings.ToLower(name)+"]")
		}
	}
	return out
}

// snake turns a Go field name into its key: LogFormat → log_format,
// PProf → pprof, AllowVariableTimeAES → allow_variable_time_aes.
func snake(s string) string {
	switch s {
	case "PProf":
		return "pprof"
	case "AllowVariableTimeAES":
		return "allow_variable_time_aes"
	}
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
