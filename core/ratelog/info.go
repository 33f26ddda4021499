package ratelog

import (
	"log/slog"
	"time"
)

// Refusal is the least time between two INFO lines of one refusal reason:
// a user who hits a refusal (no path, no exit, a destination the policy
// rejects) sees why at the default log level, and a flood of refused
// packets still writes one line a minute.
const Refusal = time.Minute

// AllowEvery is Allow with its own interval.
func (l *Limiter) AllowEvery(key string, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < every {
		return false
	}
	l.last[key] = now
	return true
}

// Refused logs msg at info level once per Refusal for key (the reason).
func (l *Limiter) Refused(log *slog.Logger, key, msg string, args ...any) {
	if l.AllowEvery("refused-"+key, Refusal) {
		log.Info(msg, args...)
	}
}
