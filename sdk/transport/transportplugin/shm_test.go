package transportplugin

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func channelMode(t *testing.T, tr transport.Transport) string {
	t.Helper()
	d := tr.(*client).data.Get()
	switch {
	case d == nil:
		return "none"
	case d.shm != nil:
		return "shm"
	default:
		return "socket"
	}
}

func TestSharedMemoryIsUsed(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in (D60 merge note)
	if !datachan.ShmSupported {
		t.Skip("no shared memory on this platform")
	}
	p := newPair(t)
	if m := channelMode(t, p.oop); m != "shm" {
		t.Fatalf("data channel = %s; want shm", m)
	}
	p.roundTrip(1)
	if st := p.oop.(pluginkit.Reporter).PluginStats(); st.Counters["host_shm_channel"] != 1 {
		t.Errorf("PluginStats does not say shm: %+v", st.Counters)
	}
}

// The socket framing, chosen by the host's environment, still passes the
// conformance suite.
func TestConformanceOutOfProcessSocket(t *testing.T) {
	t.Setenv(datachan.EnvMode, "socket")
	transporttest.Run(t, func(t *testing.T) transport.Transport {
		tr := launch(t)
		if m := channelMode(t, tr); m != "socket" {
			t.Fatalf("data channel = %s; want socket", m)
		}
		return tr
	})
}

// An older plugin binary ignores the offer: the host keeps the socket
// framing with it.
func TestOlderPluginKeepsSocket(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in (D60 merge note)
	tr, err := Launch(helper(t, "socketonly"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{t: t, oop: tr, oopR: make(chan transport.Packet, 1024), peerR: make(chan transport.Packet, 1024)}
	p.peer, _ = newUDP(nil)
	t.Cleanup(func() { p.oop.Close(); p.peer.Close() })
	if p.oopAddr, err = p.oop.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if p.peerAddr, err = p.peer.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if m := channelMode(t, tr); m != "socket" {
		t.Fatalf("data channel with an older plugin = %s; want socket", m)
	}
	go drain(p.oop, p.oopR)
	go drain(p.peer, p.peerR)
	p.roundTrip(1)
}

// serveHostile is a child that takes the shared memory and then breaks
// every rule: slots with impossible lengths, then a producer index far
// past anything the host consumed.
func serveHostile() {
	data, err := datachan.OpenChild()
	if err != nil {
		os.Exit(1)
	}
	shm, err := datachan.OpenChildShm(data)
	if err != nil || shm == nil {
		fmt.Fprintln(os.Stderr, "hostile: no shared memory:", err)
		os.Exit(1)
	}
	go func() {
		_ = shm.Send(func(p *datachan.Producer, free int) int {
			for i := range 5 {
				s := p.Slot(i)
				for j := range s {
					s[j] = 0xff // length 65535 in a 2 KiB slot
				}
			}
			return 5
		})
		for consumed := false; !consumed; time.Sleep(10 * time.Millisecond) {
			_ = shm.Send(func(_ *datachan.Producer, free int) int {
				consumed = free == datachan.DefaultSlots // the host took the garbage
				return 0
			})
		}
		shm.PokeHeadForTest(1 << 62)
		datachan.RingForTest(shm) // wake the host
		select {}
	}()
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: newUDP, data: data, shm: shm}))
}

// A hostile child cannot crash the host: bad slots are dropped and
// counted, a corrupt index gets the child killed and restarted, and the
// host's reader keeps going until Close.
func TestHostilePluginCannotCrashHost(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in (D60 merge note)
	if !datachan.ShmSupported {
		t.Skip("no shared memory on this platform")
	}
	tr, err := Launch(helper(t, "hostile"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if m := channelMode(t, tr); m != "shm" {
		t.Fatalf("data channel = %s; want shm", m)
	}
	readErr := make(chan error, 1)
	go func() {
		pkts := []transport.Packet{{Buf: make([]byte, transport.MaxDatagram)}}
		for {
			n, err := tr.ReadBatch(pkts)
			if err != nil {
				readErr <- err
				return
			}
			if n > 0 {
				readErr <- fmt.Errorf("a datagram came out of garbage: %d bytes", pkts[0].N)
				return
			}
		}
	}()
	r := tr.(pluginkit.Reporter)
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
			t.Fatalf("ReadBatch: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("host did not drop, count and restart: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}

// kill -9 of the child in the middle of a stream: writes fail with
// ErrUnavailable for a moment, traffic resumes through the restarted
// child (fresh shared memory), and after Close no goroutine is left.
func TestKillMidStreamNoLeak(t *testing.T) {
	t.Setenv(datachan.EnvMode, "shm") // opt-in (D60 merge note)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newPair(t)
	p.roundTrip(1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := batch(p.peerAddr, 99)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.oop.WriteBatch(b); err != nil && !errors.Is(err, transport.ErrUnavailable) {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	r := p.oop.(pluginkit.Reporter)
	if err := syscall.Kill(r.PluginStats().PID, syscall.SIGKILL); err != nil { // our own child
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for r.Restarts() < 1 || !r.PluginStats().Running {
		if time.Now().After(deadline) {
			t.Fatalf("no restart: %+v", r.PluginStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-done
	// Drop what the stream left in flight, then check fresh traffic.
	for len(p.peerR) > 0 || func() bool { time.Sleep(100 * time.Millisecond); return len(p.peerR) > 0 }() {
		<-p.peerR
	}
	p.roundTrip(20)
	if m := channelMode(t, p.oop); datachan.ShmSupported && m != "shm" {
		t.Errorf("after restart the data channel is %s; want shm", m)
	}
	p.oop.Close()
	p.peer.Close()
}
