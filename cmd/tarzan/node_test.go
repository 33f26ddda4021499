package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/config"
)

// A bad value stops `tarzan node` before anything starts, naming the file,
// the line and the key.
func TestRunNodeBadLoopKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(path, []byte("[cover]\nname = \"poisson\"\nloop_alert_loss = 1.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runNode([]string{"-c", path})
	if !errors.Is(err, config.ErrInvalid) || !strings.HasPrefix(err.Error(), path+":3: cover.loop_alert_loss: 1.5 is out of range") {
		t.Errorf("got %v, want %s:3: cover.loop_alert_loss: ...", err, path)
	}
}

// A bad [limits] value stops `tarzan node` before anything starts.
func TestRunNodeBadLimitsKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(path, []byte("[limits]\n\nprobe_rate = 0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runNode([]string{"-c", path})
	if !errors.Is(err, config.ErrInvalid) || !strings.HasPrefix(err.Error(), path+":3: limits.probe_rate: 0 is not a rate") {
		t.Errorf("got %v, want %s:3: limits.probe_rate: ...", err, path)
	}
}
