package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestOneLinePerKeyPerInterval(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var l Limiter
	for i := 0; i < 100; i++ {
		l.Warn(log, "a", "flood a")
		l.Debug(log, "b", "flood b")
	}
	if got := strings.Count(buf.String(), "flood a"); got != 1 {
		t.Errorf("key a logged %d times in one interval, want 1", got)
	}
	if got := strings.Count(buf.String(), "flood b"); got != 1 {
		t.Errorf("key b logged %d times in one interval, want 1 (keys are independent)", got)
	}
	l.last["a"] = l.last["a"].Add(-Every) // the interval passed
	l.Warn(log, "a", "flood a")
	if got := strings.Count(buf.String(), "flood a"); got != 2 {
		t.Errorf("key a logged %d times after its interval, want 2", got)
	}
}
