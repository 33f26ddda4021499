package transportbench

import (
	"testing"
	"time"
)

// One small in-process case of the shipped UDP transport: frames go out
// and come back counted, and the row says so.
func TestRunInProcess(t *testing.T) {
	c := Run("udp", "in-process", Config{Frames: 2000, Window: DefaultWindow, Limit: 30 * time.Second})
	if c.Error != "" {
		t.Fatal(c.Error)
	}
	if c.Sent != 2000 || c.Received == 0 || c.Received > c.Sent || c.FramesPerSec <= 0 {
		t.Fatalf("case %+v: want 2000 sent, some received", c)
	}
}

// A row of several runs is the run with the median frames/s, carries
// every run's figures, and its CPU per frame is the runs' median.
func TestMedianCase(t *testing.T) {
	runs := []Case{
		{Mode: "in-process", Sent: 1, FramesPerSec: 300, CPUPerFrame: 0.9},
		{Mode: "in-process", Sent: 2, FramesPerSec: 100, CPUPerFrame: 0.5},
		{Mode: "in-process", Sent: 3, FramesPerSec: 200, CPUPerFrame: 0.7},
	}
	m := medianCase(runs)
	if m.Sent != 3 || m.FramesPerSec != 200 || m.CPUPerFrame != 0.7 {
		t.Errorf("median row %+v: want the 200 frames/s run", m)
	}
	if len(m.RunsFramesPerSec) != 3 || m.RunsFramesPerSec[0] != 300 || len(m.RunsCPUPerFrame) != 3 {
		t.Errorf("runs not kept in order: %+v", m)
	}
	if one := medianCase(runs[:1]); one.RunsFramesPerSec != nil || one.Sent != 1 {
		t.Errorf("a single run gained per-run lists: %+v", one)
	}
	runs[1].Error = "boom"
	if e := medianCase(runs); e.Error != "boom" {
		t.Errorf("a failed run was hidden: %+v", e)
	}
}
