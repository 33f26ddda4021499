package discoveryplugin_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// echo is the child's backend: it proposes its own descriptor on Start
// and every admitted descriptor back, so the host sees both calls arrive.
type echo struct{ *discoverytest.Fake }

func (e echo) Start(self []byte) error {
	e.Propose(discovery.Proposal{Descriptor: self, Addr: netip.MustParseAddrPort("127.0.0.1:7"), Transport: "udp"})
	return e.Fake.Start(self)
}

func (e echo) Admitted(ds [][]byte) error {
	for _, d := range ds {
		e.Propose(discovery.Proposal{Descriptor: d})
	}
	return e.Fake.Admitted(ds)
}

func TestMain(m *testing.M) {
	plugintest.Main(m, func(mode string) {
		switch mode {
		case "mirror":
			discoveryplugin.Serve(func(map[string]string) (discovery.Discovery, error) {
				return mirror{discoverytest.NewMessaging()}, nil
			})
		default:
			discoveryplugin.Serve(func(map[string]string) (discovery.Discovery, error) { return echo{discoverytest.New()}, nil })
		}
	})
}

func next(t *testing.T, d discovery.Discovery) []discovery.Proposal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := d.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ps
}

func TestNextAdmittedRoundTrip(t *testing.T) {
	d, err := discoveryplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != "fake" {
		t.Errorf("Name() = %q", d.Name())
	}
	if err := d.Start([]byte("self")); err != nil {
		t.Fatal(err)
	}
	ps := next(t, d)
	if len(ps) != 1 || string(ps[0].Descriptor) != "self" || ps[0].Addr.String() != "127.0.0.1:7" || ps[0].Transport != "udp" {
		t.Fatalf("after Start, Next = %+v", ps)
	}
	if err := d.Admitted([][]byte{[]byte("peer1"), []byte("peer2")}); err != nil {
		t.Fatal(err)
	}
	ps = next(t, d)
	if len(ps) != 2 || string(ps[0].Descriptor) != "peer1" || string(ps[1].Descriptor) != "peer2" || ps[0].Addr.IsValid() {
		t.Fatalf("after Admitted, Next = %+v", ps)
	}

	// A pending Next survives a crash: the new child is started again
	// with the same descriptor and proposes it.
	got := make(chan []discovery.Proposal, 1)
	go func() { got <- next(t, d) }()
	time.Sleep(50 * time.Millisecond)
	plugintest.KillAndWait(t, d.(pluginkit.Reporter))
	select {
	case ps := <-got:
		if len(ps) != 1 || string(ps[0].Descriptor) != "self" {
			t.Fatalf("after restart, Next = %+v", ps)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending Next did not return after restart")
	}
}

func TestCloseUnblocksNext(t *testing.T) {
	d, err := discoveryplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := d.Next(context.Background()); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	d.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, discovery.ErrClosed) {
			t.Fatalf("Next after Close: %v; want discovery.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

// Stats makes echo a StatsReporter.
func (e echo) Stats() map[string]uint64 { return map[string]uint64{"echo_stat": 7} }

// A backend's own counters (StatsReporter) reach the host's PluginStats,
// as the gossip plugin's reach `tarzan status` when it runs out of process.
func TestStatsReporterCounters(t *testing.T) {
	d, err := discoveryplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Start([]byte("self")); err != nil {
		t.Fatal(err)
	}
	st := d.(pluginkit.Reporter).PluginStats()
	if st.Counters["echo_stat"] != 7 {
		t.Fatalf("PluginStats counters %v, want echo_stat 7 from the child's StatsReporter", st.Counters)
	}
}
