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
