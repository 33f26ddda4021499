package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRefusedOncePerReason(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil)) // info level
	var l Limiter
	for range 1000 {
		l.Refused(log, "no-path", "no path")
		l.Refused(log, "policy", "policy refused")
	}
	if n := strings.Count(buf.String(), "level=INFO"); n != 2 {
		t.Fatalf("%d lines for 2 reasons flooded 1000 times:\n%s", n, buf.String())
	}
}
