package localnet

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// MeasureGroups finds every process of a group and reads its counters: a
// sleeping process costs (about) nothing, a spinning one about a core.
func TestMeasureGroups(t *testing.T) {
	start := func(script string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Skip("no sh:", err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		return cmd
	}
	idle := start("sleep 30 & sleep 30; wait")
	busy := start("while :; do :; done")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err := SampleGroups([]int{idle.Process.Pid}); err == nil && len(s[0]) == 3 {
			break // sh and both sleeps are up
		}
	}
	got, err := MeasureGroups(context.Background(), []int{idle.Process.Pid, busy.Process.Pid}, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 3 {
		t.Errorf("idle group: %d processes, want sh and two sleeps: %+v", len(got[0]), got[0])
	}
	var idleCores, busyCores float64
	for _, p := range got[0] {
		idleCores += p.Cores
	}
	for _, p := range got[1] {
		busyCores += p.Cores
	}
	// The busy loop shares the machine with whatever else runs (on a
	// loaded machine it may get a few percent): ask only that it shows.
	if idleCores > 0.05 || busyCores < 0.02 {
		t.Errorf("idle group %.3f cores, busy group %.3f cores", idleCores, busyCores)
	}
	if _, err := MeasureGroups(context.Background(), []int{1 << 30}, time.Millisecond); err == nil {
		t.Error("a group with no process: no error")
	}
}
