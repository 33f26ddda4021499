package loopcover

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter keeps hot-path warnings to one line per key per interval, so
// a flood of bad frames cannot flood the log.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const logEvery = 5 * time.Second

func (l *logLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	now := time.Now()
	if now.Sub(l.last[key]) < logEvery {
		return false
	}
	l.last[key] = now
	return true
}

func (l *logLimiter) warn(log *slog.Logger, key, msg string, args ...any) {
	if l.allow(key) {
		log.Warn(msg, args...)
	}
}

func (l *logLimiter) debug(log *slog.Logger, key, msg string, args ...any) {
	if l.allow(key) {
		log.Debug(msg, args...)
	}
}
