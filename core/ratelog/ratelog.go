// Package ratelog keeps hot-path log lines to one per key per interval,
// so that a flood of bad frames or a failing adapter cannot flood the
// log. The engine (core/node) and the services built on it
// (core/ipservice, core/loopcover) share it.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Every is the least time between two lines of one key.
const Every = 5 * time.Second

// Limiter allows one line per key per Every. The zero value is ready.
type Limiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Allow reports whether a line of key may be logged now, and if so
// starts the key's next interval.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	now := time.Now()
	if now.Sub(l.last[key]) < Every {
		return false
	}
	l.last[key] = now
	return true
}

// Warn logs msg at warning level unless key was logged within Every.
func (l *Limiter) Warn(log *slog.Logger, key, msg string, args ...any) {
	if l.Allow(key) {
		log.Warn(msg, args...)
	}
}

// Debug logs msg at debug level unless key was logged within Every.
func (l *Limiter) Debug(log *slog.Logger, key, msg string, args ...any) {
	if l.Allow(key) {
		log.Debug(msg, args...)
	}
}
