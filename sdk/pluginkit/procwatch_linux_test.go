package pluginkit

import (
	"os/exec"
	"testing"
	"time"
)

// processExit reports a child's end without polling, whether or not it
// has been reaped, and stays quiet while the child lives.
func TestProcessExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep(1):", err)
	}
	exited, release, ok := processExit(cmd.Process.Pid)
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skip("no pidfd on this kernel")
	}
	defer release()
	select {
	case <-exited:
		t.Fatal("exit reported while the child runs")
	case <-time.After(50 * time.Millisecond):
	}
	cmd.Process.Kill() // not reaped yet: the pidfd must fire all the same
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	cmd.Wait()

	// Released before the end: the watch goes away without reporting.
	cmd = exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	exited, release2, ok := processExit(cmd.Process.Pid)
	if !ok {
		t.Fatal("pidfd worked once, not twice")
	}
	release2()
	select {
	case <-exited:
		t.Fatal("a released watch reported an exit")
	case <-time.After(50 * time.Millisecond):
	}
}
