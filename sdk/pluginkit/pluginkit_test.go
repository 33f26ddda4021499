package pluginkit

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestNextDelay(t *testing.T) {
	d := time.Duration(0)
	var got []time.Duration
	for range 8 {
		d = nextDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v; want %v ms", got, want)
		}
	}
	if d := nextDelay(5*time.Second, 2*time.Minute); d != minDelay {
		t.Errorf("after a stable child: %v; want %v", d, minDelay)
	}
}

func TestVersionError(t *testing.T) {
	goPlugin := errors.New("incompatible API version with plugin. Plugin version: 3, Client versions: [1 2]")
	err := versionError("x", []int{1, 2}, goPlugin)
	if !errors.Is(err, ErrVersionMismatch) || !strings.Contains(err.Error(), "protocol version 3") || !strings.Contains(err.Error(), "[1 2]") {
		t.Fatalf("versionError = %v", err)
	}
	other := errors.New("boom")
	if versionError("x", nil, other) != other {
		t.Error("unrelated errors must pass through")
	}
}

func TestLauncherValidate(t *testing.T) {
	if err := (Launcher{}).validate(); err == nil {
		t.Error("empty Path accepted")
	}
	if err := (Launcher{Path: "/bin/true", Checksum: "abc"}).validate(); err == nil {
		t.Error("short checksum accepted")
	}
}

// TestLogRoundTrip checks that a line from the plugin-side Logger, parsed
// the way go-plugin's host does, reaches the host's slog with its level,
// message, attributes and the plugin tag.
func TestLogRoundTrip(t *testing.T) {
	var child bytes.Buffer
	newPluginLogger(&child).Warn("link flapped", "peer", "ab12")
	line := child.String()
	for _, k := range []string{`"@level":"warn"`, `"@message":"link flapped"`, `"@timestamp":`, `"peer":"ab12"`} {
		if !strings.Contains(line, k) {
			t.Fatalf("plugin log line %s lacks %s", line, k)
		}
	}
	var host bytes.Buffer
	b := newBridge(slog.New(slog.NewTextHandler(&host, nil)), "udp")
	b.Named("child").Log(hclog.Warn, "link flapped", "peer", "ab12")
	b.Debug("dropped at info level")
	out := host.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "plugin=udp") || !strings.Contains(out, "peer=ab12") || strings.Contains(out, "dropped") {
		t.Fatalf("host log = %q", out)
	}
}
