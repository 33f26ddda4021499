package redteam

import (
	"context"
	"testing"
	"time"
)

// TestRedTeam mounts every registered attack at its quick size and fails on
// any attack that gains over a passive participant, or cannot run.
func TestRedTeam(t *testing.T) {
	for _, a := range Attacks() {
		t.Run(a.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := a.Run(ctx, Quick)
			if err != nil {
				t.Fatalf("%s could not run: %v", a.Name, err)
			}
			t.Logf("%s: %s: attacker %.4g, passive %.4g (tolerance %.3g): %s; %s",
				a.Name, r.Metric, r.Attacker, r.Passive, r.Tolerance, r.Verdict(), r.Detail)
			if r.Gained() {
				t.Errorf("%s: the attacker gained: %s %.4g against a passive %.4g (+%.3g allowed); %s",
					a.Name, r.Metric, r.Attacker, r.Passive, r.Tolerance, r.Detail)
			}
		})
	}
}
