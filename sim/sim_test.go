package sim

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSmallNetwork runs 50 real nodes on simnet with gossip from one
// bootstrap address: every node must learn every other, and tunnels build.
func TestSmallNetwork(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := DefaultConfig()
	cfg.Nodes = 50
	cfg.Tunnels = 100
	cfg.Seed = 1
	cfg.GossipInterval = 200 * time.Millisecond
	cfg.MaintenanceInterval = 100 * time.Millisecond
	cfg.MimicRebuildInterval = 200 * time.Millisecond
	cfg.Timeout = time.Minute
	cfg.Progress = testWriter{t}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Converged {
		t.Fatalf("no full membership: mean view %.2f%%", 100*r.MeanViewShare)
	}
	if r.Tunnels.Success < 0.99 {
		t.Errorf("tunnel success %.1f%% (%d/%d, errors %v), want ≥ 99%%", 100*r.Tunnels.Success, r.Tunnels.Built, r.Tunnels.Attempted, r.Tunnels.Errors)
	}
	if r.HandshakesAfter.Share < 0.99 && r.HandshakesAfter.Established+r.HandshakesAfter.NonMimic > 0 {
		t.Errorf("after membership %.1f%% of mimic handshakes verified (%+v)", 100*r.HandshakesAfter.Share, r.HandshakesAfter)
	}
	if r.MimicAgreement < 0.99 {
		t.Errorf("%.1f%% of mimic proposals verify at full membership, want ≥ 99%%", 100*r.MimicAgreement)
	}
	if r.PeakHeapPerNode <= 0 || r.GossipBytesPerNodeRound <= 0 {
		t.Errorf("missing measurements: heap/node %.0f, gossip B/node/round %.0f", r.PeakHeapPerNode, r.GossipBytesPerNodeRound)
	}
	t.Logf("wall %.1fs start %.1fs membership %.1fs (%.0f rounds), links %.1fs, tunnels %d/%d p50 %.1fms %v, heap/node %.0f B, hs %+v",
		r.WallSeconds, r.StartSeconds, r.MembershipSeconds, r.MembershipRounds, r.LinksSeconds, r.Tunnels.Built, r.Tunnels.Attempted, r.Tunnels.P50ms, r.Tunnels.Errors, r.PeakHeapPerNode, r.HandshakesAfter)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}
