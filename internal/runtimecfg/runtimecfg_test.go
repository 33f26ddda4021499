package runtimecfg

import (
	"slices"
	"testing"
	"time"
)

func env(kv map[string]string) Getenv { return func(k string) string { return kv[k] } }

func TestPluginProcs(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		name string
		want int
	}{
		{nil, "udp", DefaultPluginProcs},
		{map[string]string{"GOMAXPROCS": "3"}, "udp", 0}, // inherited as is
		{map[string]string{EnvPluginProcs: "2"}, "udp", 2},
		{map[string]string{EnvPluginProcs: "2", "GOMAXPROCS": "3"}, "udp", 2},
		{map[string]string{EnvPluginProcs: "pnat=2,*=1"}, "pnat", 2},
		{map[string]string{EnvPluginProcs: "pnat=2,*=1"}, "udp", 1},
		{map[string]string{EnvPluginProcs: "pnat=2"}, "udp", DefaultPluginProcs},
		{map[string]string{EnvPluginProcs: "pnat=2", "GOMAXPROCS": "3"}, "udp", 0},
		{map[string]string{EnvPluginProcs: " udp = default , *=1"}, "udp", 0},
	} {
		s, err := Plugin(c.name, env(c.env))
		if err != nil || s.Procs != c.want {
			t.Errorf("%v for %s: %+v, %v; want Procs %d", c.env, c.name, s, err, c.want)
		}
	}
}

func TestPluginEnv(t *testing.T) {
	if got := (Settings{Procs: 1}).Env(); !slices.Equal(got, []string{"GOMAXPROCS=1"}) {
		t.Errorf("Env = %q", got)
	}
	if got := (Settings{}).Env(); got != nil {
		t.Errorf("Env of Go's choice = %q; want nothing (inherited)", got)
	}
}

func TestTimerSlack(t *testing.T) {
	s, err := Plugin("udp", env(map[string]string{EnvTimerSlack: "250us"}))
	if err != nil || s.TimerSlack != 250*time.Microsecond {
		t.Errorf("%+v, %v", s, err)
	}
	if s, err := Plugin("udp", env(map[string]string{EnvTimerSlack: "0"})); err != nil || s.TimerSlack != 0 {
		t.Errorf("0: %+v, %v", s, err)
	}
	if s, err := Plugin("udp", nil); err != nil || s.TimerSlack != DefaultTimerSlack {
		t.Errorf("default: %+v, %v", s, err)
	}
}

func TestBadValues(t *testing.T) {
	for _, e := range []map[string]string{
		{EnvPluginProcs: "x"},
		{EnvPluginProcs: "-1"},
		{EnvPluginProcs: "udp=,*=1"},
		{EnvPluginProcs: "=2"},
		{EnvPluginProcs: "udp=1;pnat=2"},
		{EnvTimerSlack: "5"},
		{EnvTimerSlack: "-1ms"},
		{EnvTimerSlack: "2s"},
	} {
		if _, err := Plugin("udp", env(e)); err == nil {
			t.Errorf("%v accepted", e)
		}
	}
	if _, err := Node(env(map[string]string{EnvNodeProcs: "many"})); err == nil {
		t.Error("node: bad value accepted")
	}
}

func TestNodeProcs(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want int
	}{
		{nil, DefaultNodeProcs},
		{map[string]string{"GOMAXPROCS": "3"}, 0},
		{map[string]string{EnvNodeProcs: "2", "GOMAXPROCS": "3"}, 2},
		{map[string]string{EnvNodeProcs: "0"}, 0},
	} {
		if n, err := Node(env(c.env)); err != nil || n != c.want {
			t.Errorf("%v: %d, %v; want %d", c.env, n, err, c.want)
		}
	}
}
