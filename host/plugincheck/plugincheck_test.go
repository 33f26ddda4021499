package plugincheck

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/config"
)

func TestServeRefusesUnknown(t *testing.T) {
	if err := Serve("transport", "carrier-pigeon"); err == nil || !strings.Contains(err.Error(), `transport plugin "carrier-pigeon" is not shipped`) {
		t.Errorf("unknown name: %v", err)
	}
	if err := Serve("teleporter", "udp"); err == nil || !strings.Contains(err.Error(), `unknown plugin kind "teleporter"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestCheckPin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(path, []byte("not really a plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("not really a plugin"))
	pin := hex.EncodeToString(sum[:])
	if got := CheckPin(path, strings.ToUpper(pin)); got != "matches" {
		t.Errorf("right pin: %q", got)
	}
	if got := CheckPin(path, strings.Repeat("0", 64)); got != "MISMATCH (have "+pin+")" {
		t.Errorf("wrong pin: %q", got)
	}
	if got := CheckPin(path+".missing", pin); !strings.HasPrefix(got, "unreadable: ") {
		t.Errorf("missing file: %q", got)
	}
}

// Rows of a configuration whose node is not running: sources as the
// configuration says, in start order, the exit only on an exit node.
func TestRows(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Cover.Name = "nosuch"
	cfg.Discovery.InProcess = true
	cfg.Node.Exit = true
	rows := Rows(cfg)
	want := []Row{
		{Kind: "transport", Name: "udp", Source: "builtin"},
		{Kind: "discovery", Name: "static", Source: "builtin, in process"},
		{Kind: "cover", Name: "nosuch", Source: "unknown (not shipped, no path)"},
		{Kind: "exit", Name: "pnat", Source: "builtin"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %d", rows, len(want))
	}
	for i, r := range rows {
		if r.Kind != want[i].Kind || r.Name != want[i].Name || r.Source != want[i].Source || r.State != "node not running" {
			t.Errorf("row %d: %+v, want %+v and node not running", i, r, want[i])
		}
	}
}
