package host

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tarzan-net/tarzan/config"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reload applies a new log level at once, names what needs a restart, and
// keeps the running configuration when the file is broken, saying where.
func TestReload(t *testing.T) {
	cfg := testConfig(t)
	if err := config.Write(cfg.File, cfg); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	log, level := NewLogger(&out, "json", "info")
	h, err := Start(context.Background(), cfg, Options{Logger: log, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !strings.Contains(out.String(), `"msg":"node started"`) {
		t.Fatalf("log_format json: the log is not JSON:\n%s", out.String())
	}
	text, _ := os.ReadFile(cfg.File)
	edited := strings.Replace(string(text), `log_level = "info"`, `log_level = "debug"`, 1)
	edited = strings.Replace(edited, "loop_tunnels = 2", "loop_tunnels = 3", 1)
	if err := os.WriteFile(cfg.File, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level after reload: %v, want debug", level.Level())
	}
	if l := out.String(); !strings.Contains(l, `"applied":"node.log_level=debug"`) || !strings.Contains(l, `"needs_restart":"[cover]"`) {
		t.Errorf("reload log does not say what it applied and what needs a restart:\n%s", l)
	}
	broken := strings.Replace(edited, `log_level = "debug"`, `log_level = "loud"`, 1)
	if err := os.WriteFile(cfg.File, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	err = h.Reload()
	if err == nil || !strings.Contains(err.Error(), cfg.File+":") || !strings.Contains(err.Error(), "node.log_level") {
		t.Fatalf("reload of a broken file: %v, want file:line: node.log_level", err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("a broken file changed the level to %v", level.Level())
	}
	if !strings.Contains(out.String(), "reload failed; the running configuration stays as it was") {
		t.Errorf("a failed reload was not logged:\n%s", out.String())
	}
}
