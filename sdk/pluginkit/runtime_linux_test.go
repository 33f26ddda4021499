package pluginkit

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestChildRuntimeSettings: Launcher.Env wins over the same variable in
// the host's environment, the host's other variables still reach the
// child, and TimerSlack is the child's timer slack while the starting
// thread keeps its own.
func TestChildRuntimeSettings(t *testing.T) {
	t.Setenv("GOMAXPROCS", "7")
	t.Setenv("TARZAN_TEST_INHERITED", "yes")
	runtime.LockOSThread() // the same thread before and after the start
	defer runtime.UnlockOSThread()
	ownBefore, err := os.ReadFile("/proc/thread-self/timerslack_ns")
	if err != nil {
		t.Skip("no /proc/thread-self/timerslack_ns:", err)
	}
	l := Launcher{Path: "/bin/sh", Args: []string{"-c", `echo "$GOMAXPROCS $TARZAN_TEST_INHERITED $(cat /proc/self/timerslack_ns)"`},
		Env: []string{"GOMAXPROCS=1"}, TimerSlack: 300 * time.Microsecond}
	cmd := l.command()
	var out strings.Builder
	cmd.Stdout = &out
	if err := withTimerSlack(l.TimerSlack, cmd.Start); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "1 yes 300000" {
		t.Errorf("child saw %q; want GOMAXPROCS 1, the inherited variable and slack 300000 ns", got)
	}
	if after, _ := os.ReadFile("/proc/thread-self/timerslack_ns"); string(after) != string(ownBefore) {
		t.Errorf("this thread's slack %q after a start; was %q", after, ownBefore)
	}
}
