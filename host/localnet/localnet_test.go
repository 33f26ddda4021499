package localnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host"
)

// TestMain: the test binary also plays `tarzan node -c FILE` (localnet.RunTestsOrNode).
func TestMain(m *testing.M) { RunTestsOrNode(m) }

// inProcess is a loopback network whose plugins all run in the node.
func inProcess(t *testing.T, count int, edit func(i int, cfg *config.Config)) *Net {
	t.Helper()
	cfgs, err := Loopback{}.Configs(count)
	if err != nil {
		t.Fatal(err)
	}
	for i, cfg := range cfgs {
		cfg.Transport.InProcess, cfg.Discovery.InProcess, cfg.Cover.InProcess = true, true, true
		if edit != nil {
			edit(i, cfg)
		}
	}
	nw, err := Write(t.TempDir(), cfgs, NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.Stop)
	return nw
}

func exe(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitGroupGone waits up to 10 s until no process is left in process
// group pgid (a killed orphan is reaped by init a moment later).
func waitGroupGone(pgid int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			return true
		}
	}
	return false
}

func TestJoinAndStop(t *testing.T) {
	nw := inProcess(t, 4, nil)
	// The command-prefix hook (ip netns exec NS on the test bed): env
	// execs the node, so the PID is still the node's.
	nw.Nodes[1].Wrap = []string{"env"}
	var lines []string
	nw.Progress = func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	if err := nw.Start(exe(t)); err != nil {
		t.Fatal(err)
	}
	// Generous: the bound is for a machine that does nothing else.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := nw.WaitJoined(ctx); err != nil {
		t.Fatal(err)
	}
	if nw.JoinedIn <= 0 || len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "4 know every peer") {
		t.Errorf("joined in %v; progress %q", nw.JoinedIn, lines)
	}
	pids := nw.PIDs()
	if len(pids) != 4 {
		t.Fatalf("PIDs %v, want 4", pids)
	}
	for _, n := range nw.Nodes {
		if st, err := n.Client.Status(ctx); err != nil || st.Short != n.ID.Short() {
			t.Fatalf("node %s: status %+v, %v", n.Name, st, err)
		}
	}
	nw.Stop()
	for _, n := range nw.Nodes {
		if !n.Exited() || !waitGroupGone(n.PID()) {
			t.Errorf("node %s (pid %d) still running after Stop", n.Name, n.PID())
		}
		if _, err := os.Stat(n.Dir + "/" + host.ControlAddrFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("node %s did not stop cleanly on SIGTERM: control.addr left: %v", n.Name, err)
		}
	}
	if len(nw.PIDs()) != 0 {
		t.Errorf("PIDs after Stop: %v", nw.PIDs())
	}
	nw.Stop() // twice is fine
}

// A node that cannot start makes WaitJoined fail at once, naming it and
// quoting its log.
func TestNodeExitReported(t *testing.T) {
	nw := inProcess(t, 3, func(i int, cfg *config.Config) {
		if i == 2 {
			cfg.Discovery.Name = "nosuch"
		}
	})
	if err := nw.Start(exe(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := nw.WaitJoined(ctx)
	if err == nil || !strings.Contains(err.Error(), "node03") || !strings.Contains(err.Error(), "exited") ||
		!strings.Contains(err.Error(), `discovery "nosuch"`) {
		t.Fatalf("WaitJoined: %v; want node03's exit with its log", err)
	}
	if ctx.Err() != nil {
		t.Fatal("WaitJoined waited for its deadline instead of reporting the exit")
	}
}

// Stop kills a process group that ignores SIGTERM once StopGrace passed.
func TestStopKillsAfterGrace(t *testing.T) {
	nw := inProcess(t, 1, nil)
	// sh ignores SIGTERM and waits for the node, its child in the group.
	nw.Nodes[0].Wrap = []string{"sh", "-c", `trap "" TERM; "$@"; sleep 60`, "sh"}
	nw.StopGrace = 500 * time.Millisecond
	if err := nw.Start(exe(t)); err != nil {
		t.Fatal(err)
	}
	// A lone node never joins (no peers); wait until it runs.
	n := nw.Nodes[0]
	for deadline := time.Now().Add(3 * time.Minute); !n.connect(); time.Sleep(50 * time.Millisecond) {
		if n.Exited() || time.Now().After(deadline) {
			t.Fatalf("the node did not start:\n%s", n.LogTail(10))
		}
	}
	start := time.Now()
	nw.Stop()
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Stop took %v with a 500 ms grace", d)
	}
	if !waitGroupGone(n.PID()) {
		t.Error("process group still alive 10 s after Stop")
	}
}
