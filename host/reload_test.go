package host

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
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

// A reload applies a changed exit policy (the core, the published
// descriptor and the exit adapter's own check) and a changed cover policy
// (swapped in, the old one closed), and says so.
func TestReloadExitPolicyAndCover(t *testing.T) {
	cfg := testConfig(t)
	cfg.Node.Exit = true
	cfg.Exit.InProcess = true
	cfg.Exit.Policy = []string{"accept 198.18.0.0/15:80", "reject *:*"}
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
	type policer interface{ Policy() *exitpolicy.Policy }
	exit, ok := h.plugins.exit.(policer)
	if !ok {
		t.Fatalf("the in-process exit adapter %T does not report its policy", h.plugins.exit)
	}
	dst := netip.MustParseAddrPort("198.18.0.1:443")
	if ok, _ := h.Node().ExitPolicy().Allows("tcp", dst); ok {
		t.Fatalf("before the reload the policy already allows %v", dst)
	}

	next := *cfg
	next.Exit.Policy = []string{"accept 198.18.0.0/15:80,443", "reject *:*"}
	next.Cover.Plugin = config.Plugin{Name: "constant", InProcess: true, Options: map[string]string{"rate": "20"}}
	if err := config.Write(cfg.File, &next); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*exitpolicy.Policy{"the core": h.Node().ExitPolicy(), "the exit adapter": exit.Policy()} {
		if ok, _ := p.Allows("tcp", dst); !ok {
			t.Errorf("after the reload %s still refuses %v (policy %v)", what, dst, p)
		}
	}
	d, err := descriptor.Parse(h.Node().Descriptor(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := h.Node().ExitPolicy().Summary(); d.ExitPolicy != want {
		t.Errorf("published summary %q, want the reloaded policy's %q", d.ExitPolicy, want)
	}
	if got := h.plugins.cover.(swapper).current().Name(); got != "constant" {
		t.Errorf("cover policy after the reload: %q, want constant", got)
	}
	if got := h.plugins.replies(); !slices.ContainsFunc(got, func(r control.PluginReply) bool { return r.Kind == "cover" && r.Name == "constant" }) {
		t.Errorf("the plugin list does not show the new cover policy: %+v", got)
	}
	l := out.String()
	if !strings.Contains(l, `exit.policy=\"accept 198.18.0.0/15:80,443; reject *:*\"`) || !strings.Contains(l, "cover=constant") {
		t.Errorf("the reload log does not name the exit policy and the cover policy it applied:\n%s", l)
	}
}
