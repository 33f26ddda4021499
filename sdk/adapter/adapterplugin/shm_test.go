package adapterplugin_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

func launchOpen(t *testing.T, mode string) adapter.Adapter {
	t.Helper()
	a, err := adapterplugin.Launch(plugintest.Launcher(t, mode), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Open(adapter.Config{MTU: adapter.InnerMTU}); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSharedMemoryIsUsed(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in since D59
	if !datachan.ShmSupported {
		t.Skip("no shared memory on this platform")
	}
	a := launchOpen(t, "echo")
	if m := adapterplugin.ChannelMode(a); m != "shm" {
		t.Fatalf("data channel = %s; want shm", m)
	}
	roundTrip(t, a, 1)
	if st := a.(pluginkit.Reporter).PluginStats(); st.Counters["host_shm_channel"] != 1 {
		t.Errorf("PluginStats does not say shm: %+v", st.Counters)
	}
	// More than a ring holds, so the writer blocks on a full ring and
	// is woken as the child drains it.
	for i := range 3 * datachan.DefaultSlots / adapter.BatchSize {
		roundTrip(t, a, byte(i))
	}
}

// Packets that do not fit a slot, or whose N lies outside their buffer,
// are dropped and counted; the rest of the batch goes through.
func TestSharedMemoryDropsOversize(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in since D59
	if !datachan.ShmSupported {
		t.Skip("no shared memory on this platform")
	}
	a := launchOpen(t, "echo")
	pkts := []adapter.Packet{
		{Buf: make([]byte, 4000), N: 4000, Flow: 1},
		{Buf: []byte("ok"), N: 2, Flow: 2},
		{Buf: make([]byte, 4), N: 9, Flow: 3},
	}
	if n, err := a.WritePackets(pkts); err != nil || n != 3 {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	if p := readN(t, a, 1)[0]; p.Flow != 2 || string(p.Buf) != "ok" {
		t.Fatalf("got %q on flow %d", p.Buf, p.Flow)
	}
	if got := a.(pluginkit.Reporter).PluginStats().Counters["host_dropped_malformed"]; got != 2 {
		t.Errorf("host_dropped_malformed = %d; want 2", got)
	}
}

// The socket framing, chosen by the host's environment, still passes the
// conformance suite.
func TestConformanceThroughChildSocket(t *testing.T) {
	t.Setenv(datachan.EnvMode, "socket")
	adaptertest.Run(t, func(t *testing.T) adaptertest.Subject {
		a, err := adapterplugin.Launch(plugintest.Launcher(t, "echo"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if m := adapterplugin.ChannelMode(a); m != "socket" {
			t.Fatalf("data channel = %s; want socket", m)
		}
		return adaptertest.Subject{Adapter: a, Provoke: func(t *testing.T, a adapter.Adapter) uint64 {
			p := adaptertest.Probe()
			if _, err := a.WritePackets([]adapter.Packet{{Buf: p, N: len(p), Flow: 7}}); err != nil {
				t.Fatalf("WritePackets: %v", err)
			}
			return 7
		}}
	})
}

// An older plugin binary ignores the offer: the host keeps the socket
// framing with it.
func TestOlderPluginKeepsSocket(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in since D59
	a := launchOpen(t, "socketonly")
	if m := adapterplugin.ChannelMode(a); m != "socket" {
		t.Fatalf("data channel with an older plugin = %s; want socket", m)
	}
	roundTrip(t, a, 3)
}

// A hostile child cannot crash the host: bad slots are dropped and
// counted, a corrupt index gets the child killed and restarted, and the
// host's reader keeps going until Close.
func TestHostilePluginCannotCrashHost(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in since D59
	if !datachan.ShmSupported {
		t.Skip("no shared memory on this platform")
	}
	a, err := adapterplugin.Launch(plugintest.Launcher(t, "hostile"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if m := adapterplugin.ChannelMode(a); m != "shm" {
		t.Fatalf("data channel = %s; want shm", m)
	}
	readErr := make(chan error, 1)
	go func() {
		pkts := []adapter.Packet{{Buf: make([]byte, 1500)}}
		for {
			n, err := a.ReadPackets(pkts)
			if err != nil {
				readErr <- err
				return
			}
			if n > 0 {
				readErr <- fmt.Errorf("a packet came out of garbage: %d bytes", pkts[0].N)
				return
			}
		}
	}()
	r := a.(pluginkit.Reporter)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.PluginStats()
		// 5 bad slots and 1 corrupt index per child.
		if st.Counters["host_malformed"] >= 6 && st.Restarts >= 1 {
			t.Logf("after the hostile child: %+v", st.Counters)
			break
		}
		select {
		case err := <-readErr:
			t.Fatalf("ReadPackets: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("host did not drop, count and restart: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, adapter.ErrClosed) {
			t.Fatalf("ReadPackets after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadPackets still blocked after Close")
	}
}

// kill -9 of the child in the middle of a stream: writes fail with
// ErrUnavailable for a moment, traffic resumes through the restarted
// child (fresh shared memory), and after Close no goroutine is left.
func TestKillMidStreamNoLeak(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in since D59
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, err := adapterplugin.Launch(plugintest.Launcher(t, "sink"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Open(adapter.Config{MTU: adapter.InnerMTU}); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		b := []adapter.Packet{{Buf: make([]byte, 1280), N: 1280, Flow: 1}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := a.WritePackets(b); err != nil && !errors.Is(err, pluginkit.ErrUnavailable) {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	plugintest.KillAndWait(t, a.(pluginkit.Reporter))
	close(stop)
	<-done
	if m := adapterplugin.ChannelMode(a); datachan.ShmSupported && m != "shm" {
		t.Errorf("after restart the data channel is %s; want shm", m)
	}
	a.Close()
}
