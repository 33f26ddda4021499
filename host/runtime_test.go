package host

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/internal/runtimecfg"
)

// TestChildRuntimeSettings: the runtime settings runtimecfg chooses for a
// plugin reach the child process: its environment holds the one
// GOMAXPROCS it was given, and its timer slack is the one asked for.
func TestChildRuntimeSettings(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		env       map[string]string
		wantProcs string // "" = no GOMAXPROCS in the child's environment
		wantSlack string // "" = not checked
	}{
		{"default", nil, strconv.Itoa(runtimecfg.DefaultPluginProcs), ""},
		{"per plugin", map[string]string{runtimecfg.EnvPluginProcs: "pnat=3,udp=2", runtimecfg.EnvTimerSlack: "300us"}, "2", "300000"},
		{"user's GOMAXPROCS", map[string]string{"GOMAXPROCS": "3"}, "3", ""},
		{"tarzan's wins", map[string]string{"GOMAXPROCS": "3", runtimecfg.EnvPluginProcs: "1"}, "1", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"GOMAXPROCS", runtimecfg.EnvPluginProcs, runtimecfg.EnvTimerSlack} {
				t.Setenv(k, "") // restored after the test
				os.Unsetenv(k)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			want := c.wantProcs
			if want == "0" {
				want = ""
			}
			cfg := testConfig(t)
			cfg.Transport.InProcess = false // "plugin serve transport udp"
			h, err := Start(context.Background(), cfg, Options{Exe: exe})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			var kids []int // the transport child, as the control API reports it
			for _, r := range h.plugins.replies() {
				if r.Kind == "transport" && r.PID > 0 {
					kids = append(kids, r.PID)
				}
			}
			if len(kids) != 1 {
				t.Fatalf("transport children %v; want one", kids)
			}
			environ, err := os.ReadFile("/proc/" + strconv.Itoa(kids[0]) + "/environ")
			if err != nil {
				t.Skip("cannot read the child's environment:", err)
			}
			var got []string
			for _, kv := range strings.Split(string(environ), "\x00") {
				if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
					got = append(got, v)
				}
			}
			if (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
				t.Errorf("child's GOMAXPROCS %q; want %q", got, want)
			}
			if c.wantSlack != "" {
				b, err := os.ReadFile("/proc/" + strconv.Itoa(kids[0]) + "/timerslack_ns")
				if err != nil {
					t.Skip("no timerslack_ns:", err)
				}
				if s := strings.TrimSpace(string(b)); s != c.wantSlack {
					t.Errorf("child's timer slack %s ns; want %s", s, c.wantSlack)
				}
			}
		})
	}
}
