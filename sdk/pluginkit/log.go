package pluginkit

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// envLogLevel carries the host's log level to the child so a plugin does
// not format debug lines the host would drop anyway.
const envLogLevel = "TARZAN_PLUGIN_LOG_LEVEL"

// hclogTimeFormat is the only timestamp layout go-plugin's host side
// parses; any other makes it log the whole JSON line verbatim.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// slogBridge is an hclog.Logger that writes to a *slog.Logger. go-plugin
// logs its own events and re-logs every line a child writes to stderr
// through the hclog.Logger it is given; this bridge lands both in the
// host's slog, tagged with the plugin's name.
type slogBridge struct {
	l    *slog.Logger
	name string
	args []any
}

func newBridge(l *slog.Logger, plugin string) hclog.Logger {
	return &slogBridge{l: l.With("plugin", plugin)}
}

// toSlog maps an hclog level to slog's. hclog.DefaultLevel is not a
// level of its own: it equals hclog.Info, and listing it beside Debug once
// demoted every INFO line a child wrote to DEBUG (a SOCKS refusal never
// reached the node's log at the default level).
func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug, hclog.NoLevel:
		return slog.LevelDebug
	case hclog.Info:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (b *slogBridge) Log(level hclog.Level, msg string, args ...any) {
	lv := toSlog(level)
	if !b.l.Enabled(context.Background(), lv) {
		return
	}
	all := append(append([]any(nil), b.args...), args...)
	if b.name != "" {
		all = append(all, "logger", b.name)
	}
	b.l.Log(context.Background(), lv, msg, all...)
}

func (b *slogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }
func (b *slogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }
func (b *slogBridge) Info(msg string, args ...any)  { b.Log(hclog.Info, msg, args...) }
func (b *slogBridge) Warn(msg string, args ...any)  { b.Log(hclog.Warn, msg, args...) }
func (b *slogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *slogBridge) enabled(l hclog.Level) bool {
	return b.l.Enabled(context.Background(), toSlog(l))
}
func (b *slogBridge) IsTrace() bool { return b.enabled(hclog.Trace) }
func (b *slogBridge) IsDebug() bool { return b.enabled(hclog.Debug) }
func (b *slogBridge) IsInfo() bool  { return b.enabled(hclog.Info) }
func (b *slogBridge) IsWarn() bool  { return b.enabled(hclog.Warn) }
func (b *slogBridge) IsError() bool { return b.enabled(hclog.Error) }

func (b *slogBridge) ImpliedArgs() []any { return b.args }
func (b *slogBridge) With(args ...any) hclog.Logger {
	c := *b
	c.args = append(append([]any(nil), b.args...), args...)
	return &c
}
func (b *slogBridge) Name() string { return b.name }
func (b *slogBridge) Named(name string) hclog.Logger {
	c := *b
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}
func (b *slogBridge) ResetNamed(name string) hclog.Logger {
	c := *b
	c.name = name
	return &c
}

// SetLevel is ignored: the slog handler owns the level.
func (b *slogBridge) SetLevel(hclog.Level) {}

// GetLevel reports Trace so go-plugin forwards every child line; the slog
// handler then filters.
func (b *slogBridge) GetLevel() hclog.Level { return hclog.Trace }

func (b *slogBridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(b.l.Handler(), slog.LevelInfo)
}
func (b *slogBridge) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return b.StandardLogger(opts).Writer()
}

// hostLevelEnv is the child environment entry that passes on the host's
// most verbose enabled level.
func hostLevelEnv(l *slog.Logger) string {
	lv := slog.LevelError
	for _, c := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(context.Background(), c) {
			lv = c
			break
		}
	}
	return envLogLevel + "=" + lv.String()
}

// Logger returns the logger a plugin should use. It writes JSON lines in
// hclog's format to the process's original stderr, which the host parses
// and re-logs through its own slog logger tagged with the plugin's name.
// Never write logs to stdout: go-plugin uses it for its handshake.
func Logger() *slog.Logger { return newPluginLogger(os.Stderr) }

func newPluginLogger(w io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(os.Getenv(envLogLevel))); err != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				return slog.String("@level", hclogLevel(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			}
			return a
		},
	}))
}

func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// hclogForServe is the logger go-plugin's server side uses for its own
// messages in the child; same format as Logger.
func hclogForServe() hclog.Logger {
	lv := hclog.LevelFromString(strings.ToLower(os.Getenv(envLogLevel)))
	if lv == hclog.NoLevel {
		lv = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Level: lv, Output: os.Stderr, JSONFormat: true, TimeFormat: hclogTimeFormat,
	})
}
