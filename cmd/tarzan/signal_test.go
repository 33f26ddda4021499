package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/identity"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SIGHUP reloads `tarzan node` (and never kills it); SIGTERM stops it
// cleanly, taking its control socket and control.addr with it. The log is
// JSON with log_format = "json".
func TestNodeSignals(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.LogFormat = "json"
	cfg.Transport.Listen = netip.MustParseAddrPort("127.0.0.1:0")
	cfg.Transport.InProcess, cfg.Discovery.InProcess, cfg.Cover.InProcess = true, true, true
	path := filepath.Join(dir, "node.toml")
	if err := config.Write(path, cfg); err != nil {
		t.Fatal(err)
	}
	id, _ := identity.Generate(rand.Reader)
	if err := id.Save(filepath.Join(dir, "identity.key")); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuf
	cmd := exec.Command(tarzanBin, "node", "-c", path)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	waitUntil(t, "control.addr", func() bool { _, err := control.ClientForDir(dir, nil); return err == nil })
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reload's log line", func() bool { return strings.Contains(logs.String(), `"msg":"reloaded`) })
	c, err := control.ClientForDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("status after SIGHUP: %v\n%s", err, logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM\n%s", logs.String())
	}
	for _, f := range []string{control.AddrFile, control.SocketFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after SIGTERM: %v", f, err)
		}
	}
	if !strings.HasPrefix(logs.String(), "{") {
		t.Errorf("log_format json: the log is not JSON:\n%s", logs.String())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
