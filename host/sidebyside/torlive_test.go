package sidebyside

import (
	"context"
	"testing"
	"time"
)

func TestTorNetworkLive(t *testing.T) {
	if _, _, err := LookTor(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tn, err := StartTor(ctx, t.TempDir(), DefaultTorPlan, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	ctl, err := tn.Control(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	for range 3 {
		d, err := ctl.BuildCircuit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("circuit built in %v", d)
	}
}
