package redteam

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// measuresCPU are the attacks whose figure is the victim's CPU time per
// frame: they run on the wall clock, where CPU time means something. In
// a synctest bubble the wall clock is virtual and the idle rate they
// subtract would be wrong.
var measuresCPU = map[string]bool{"create-flood": true, "handshake-flood": true, "probe-flood": true}

// TestRedTeam mounts every registered attack at its quick size and fails on
// any attack that gains over a passive participant, or cannot run. Every
// attack but the CPU measurements runs in a synctest bubble, in virtual
// time: a loaded machine cannot change its verdict.
func TestRedTeam(t *testing.T) {
	for _, a := range Attacks() {
		t.Run(a.Name, func(t *testing.T) {
			if measuresCPU[a.Name] {
				mount(t, a)
				return
			}
			synctest.Test(t, func(t *testing.T) { mount(t, a) })
		})
	}
}

func mount(t *testing.T, a Attack) {
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
}
