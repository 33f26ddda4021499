package host

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/tarzan-net/tarzan/config"
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
// while the node runs is applied (node.log_level), what cannot is named
// with "needs a restart". A file that does not load leaves the running
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
	restart = append(restart, changedKeys(cur, next)...)
	// What was applied is now the running configuration; the rest keeps
	// its running value, so a later reload reports it again.
	upd := *cur
	upd.Node.LogLevel = next.Node.LogLevel
	if h.level == nil {
		upd.Node.LogLevel = cur.Node.LogLevel
	}
	h.cfg = &upd
	return applied, restart
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
