package covertest

import (
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

func TestFakeConforms(t *testing.T) {
	Run(t, func(t *testing.T) cover.Policy { return New(10*time.Millisecond, 5) })
}

func TestFakePoisson(t *testing.T) {
	p, err := Factory(time.Second, 7)(map[string]string{"poisson": "true"})
	if err != nil {
		t.Fatal(err)
	}
	f := p.(*Policy)
	for i, want := range []bool{true, false} {
		if i > 0 { // the first tick shows the option's effect
			f.SetPoisson(want)
		}
		ts, err := p.Tick(time.Now(), SampleLinks(2))
		if err != nil {
			t.Fatal(err)
		}
		for i, tg := range ts {
			if tg != (cover.Target{Rate: 7, Poisson: want}) {
				t.Errorf("link %d: %+v, want rate 7 poisson %v", i, tg, want)
			}
		}
	}
	if n := len(f.Ticks()); n != 2 {
		t.Errorf("%d ticks recorded, want 2", n)
	}
}

func TestFakeLoopRate(t *testing.T) {
	p, err := Factory(time.Second, 7)(map[string]string{"loop_rate": "2.5"})
	if err != nil {
		t.Fatal(err)
	}
	f := p.(*Policy)
	if got := f.Loops(); got != (cover.Loops{Rate: 2.5}) {
		t.Errorf("Loops() = %+v, want rate 2.5", got)
	}
	f.SetLoopRate(0)
	if got := f.Loops(); got != (cover.Loops{}) {
		t.Errorf("after SetLoopRate(0): Loops() = %+v, want none", got)
	}
	if _, err := Factory(time.Second, 7)(map[string]string{"loop_rate": "x"}); err == nil {
		t.Error("loop_rate = x accepted")
	}
}
