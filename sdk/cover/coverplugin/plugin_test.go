package coverplugin_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin"
	"github.com/tarzan-net/tarzan/sdk/cover/covertest"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

func TestMain(m *testing.M) {
	plugintest.Main(m, func(mode string) {
		f := covertest.Factory(250*time.Millisecond, 42)
		if mode == "old" {
			coverplugin.ServeWithoutSessions(f)
			return
		}
		coverplugin.Serve(f)
	})
}

func TestTickRoundTrip(t *testing.T) {
	p, err := coverplugin.Launch(plugintest.Launcher(t, "fake"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "fake" || p.Interval() != 250*time.Millisecond {
		t.Fatalf("Name, Interval = %q, %v; want fake, 250ms", p.Name(), p.Interval())
	}
	links := []cover.LinkStats{{Peer: "a", Queued: 3, DataSent: 1}, {Peer: "b", CoverRecv: 9}}
	targets, err := p.Tick(time.Now(), links)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 || targets[0].Rate != 42 || targets[1].Rate != 42 {
		t.Fatalf("targets = %+v; want two of rate 42", targets)
	}
	if empty, err := p.Tick(time.Now(), nil); err != nil || len(empty) != 0 {
		t.Fatalf("Tick with no links = %v, %v", empty, err)
	}

	plugintest.KillAndWait(t, p.(pluginkit.Reporter))
	if targets, err := p.Tick(time.Now(), links); err != nil || len(targets) != 2 {
		t.Fatalf("Tick after restart = %v, %v", targets, err)
	}
}

// Target.Poisson crosses the process boundary; an all-even answer still
// arrives as all even.
func TestTickPoissonRoundTrip(t *testing.T) {
	links := []cover.LinkStats{{Peer: "a"}, {Peer: "b"}, {Peer: "c"}}
	for _, poisson := range []bool{true, false} {
		opts := map[string]string{}
		if poisson {
			opts["poisson"] = "true"
		}
		p, err := coverplugin.Launch(plugintest.Launcher(t, "fake"), opts)
		if err != nil {
			t.Fatal(err)
		}
		targets, err := p.Tick(time.Now(), links)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != len(links) {
			t.Fatalf("poisson=%v: %d targets for %d links", poisson, len(targets), len(links))
		}
		for i, tg := range targets {
			if tg != (cover.Target{Rate: 42, Poisson: poisson}) {
				t.Errorf("poisson=%v: link %d target %+v", poisson, i, tg)
			}
		}
	}
}

// The loop schedule of a policy that implements cover.Looper crosses the
// process boundary at Configure; a policy that asks for none arrives as
// rate 0.
func TestLoopsRoundTrip(t *testing.T) {
	for _, want := range []float64{20, 0.5, 0} {
		opts := map[string]string{}
		if want != 0 {
			opts["loop_rate"] = strconv.FormatFloat(want, 'g', -1, 64)
		}
		p, err := coverplugin.Launch(plugintest.Launcher(t, "fake"), opts)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := p.(cover.Looper)
		if !ok {
			p.Close()
			t.Fatal("the launched policy does not implement cover.Looper")
		}
		got := l.Loops()
		pid := p.(pluginkit.Reporter).PluginStats().PID
		if pid == 0 || pid == os.Getpid() {
			t.Errorf("policy runs in pid %d, want a child process", pid)
		}
		if got != (cover.Loops{Rate: want}) {
			t.Errorf("loop_rate %v: Loops() = %+v from child pid %d", want, got, pid)
		}
		if want == 20 {
			// A restarted child is configured again and answers the same.
			plugintest.KillAndWait(t, p.(pluginkit.Reporter))
			if again := l.Loops(); again != got {
				t.Errorf("after a restart: Loops() = %+v, want %+v", again, got)
			}
		}
		p.Close()
	}
}
