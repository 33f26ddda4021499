package adapter_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
)

// gate is an adapter whose WritePackets reports each batch and then waits
// for the test to let it return, so the test controls when it is busy.
type gate struct {
	*adaptertest.Fake
	batches chan []string // the packets of each call, as strings
	release chan error    // what the call returns
}

func newGate() *gate {
	return &gate{Fake: adaptertest.New(adapter.RoleExit), batches: make(chan []string), release: make(chan error)}
}

func (g *gate) WritePackets(pkts []adapter.Packet) (int, error) {
	var got []string
	for _, p := range pkts {
		got = append(got, string(p.Buf[:p.N]))
	}
	g.batches <- got
	if err := <-g.release; err != nil {
		return 0, err
	}
	return len(pkts), nil
}

func (g *gate) next(t *testing.T) []string {
	t.Helper()
	select {
	case b := <-g.batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no WritePackets call within 10s")
		return nil
	}
}

func startWriter(t *testing.T, a adapter.Adapter, limit int, onErr func(int, error)) *adapter.Writer {
	w := adapter.NewWriter(a, limit, onErr)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() { w.Run(done); close(stopped) }()
	t.Cleanup(func() { close(done); <-stopped })
	return w
}

// A packet that finds the writer idle goes alone and at once; what is
// written while the adapter is busy goes as one batch, in order, and the
// caller's buffer is free again when Write returns.
func TestWriterBatchesWhileBusy(t *testing.T) {
	g := newGate()
	var lost []int
	w := startWriter(t, g, 0, func(n int, err error) { lost = append(lost, n) })
	buf := []byte("p0")
	if !w.Write(1, buf) {
		t.Fatal("Write refused on an empty queue")
	}
	buf[1] = 'X' // the writer copied it
	if b := g.next(t); !slices.Equal(b, []string{"p0"}) {
		t.Fatalf("first call got %q, want [p0] alone", b)
	}
	for _, s := range []string{"p1", "p2", "p3"} {
		w.Write(2, []byte(s))
	}
	g.release <- nil
	if b := g.next(t); !slices.Equal(b, []string{"p1", "p2", "p3"}) {
		t.Fatalf("second call got %q, want the three written meanwhile", b)
	}
	g.release <- errors.New("child restarting")
	w.Write(3, []byte("p4"))
	if b := g.next(t); !slices.Equal(b, []string{"p4"}) {
		t.Fatalf("third call got %q", b)
	}
	g.release <- nil
	if !slices.Equal(lost, []int{3}) {
		t.Fatalf("onErr saw %v lost, want [3] (the failed batch)", lost)
	}
}

// A full queue refuses (the caller counts a drop) instead of blocking.
func TestWriterQueueBounded(t *testing.T) {
	g := newGate()
	w := startWriter(t, g, 4, nil)
	w.Write(0, []byte("in flight"))
	g.next(t) // Run is now blocked in WritePackets with it
	for i := range 4 {
		if !w.Write(0, []byte{byte(i)}) {
			t.Fatalf("packet %d refused below the limit", i)
		}
	}
	if w.Write(0, []byte("one too many")) {
		t.Fatal("Write accepted past the limit")
	}
	g.release <- nil
	if b := g.next(t); len(b) != 4 {
		t.Fatalf("next batch has %d packets, want 4", len(b))
	}
	g.release <- nil
}

// Many writers, one adapter: every packet arrives once, each writer's in
// its order, and after Run returns Write refuses.
func TestWriterConcurrentOrder(t *testing.T) {
	f := adaptertest.New(adapter.RoleExit)
	w := adapter.NewWriter(f, 1<<16, nil)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() { w.Run(done); close(stopped) }()
	const writers, each = 4, 500
	for g := range writers {
		go func() {
			for i := range each {
				for !w.Write(uint64(g), []byte{byte(i >> 8), byte(i)}) {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	next := make([]int, writers)
	for range writers * each {
		select {
		case p := <-f.Written():
			if i := int(p.Buf[0])<<8 | int(p.Buf[1]); i != next[p.Flow] {
				t.Fatalf("writer %d: packet %d arrived when %d was due", p.Flow, i, next[p.Flow])
			}
			next[p.Flow]++
		case <-time.After(10 * time.Second):
			t.Fatalf("stalled; next due %v", next)
		}
	}
	close(done)
	<-stopped
	if w.Write(0, []byte("late")) {
		t.Fatal("Write accepted after Run returned")
	}
}

// CloseFlow reaches the adapter after the packets written before it, and
// before it returns, as when the core wrote directly: a tunnel's last
// packets must not bring back the state CloseFlow dropped.
func TestWriterCloseFlowInOrder(t *testing.T) {
	f := adaptertest.New(adapter.RoleExit)
	g := &gate{Fake: f, batches: make(chan []string), release: make(chan error)}
	w := startWriter(t, g, 0, nil)
	w.Write(1, []byte("first"))
	g.next(t) // Run is busy: what follows queues up
	w.Write(1, []byte("a"))
	closed := make(chan struct{})
	go func() { w.CloseFlow(1); close(closed) }()
	time.Sleep(20 * time.Millisecond)
	w.Write(2, []byte("late")) // after CloseFlow was called: need not wait for it
	select {
	case <-closed:
		t.Fatal("CloseFlow returned while a packet written before it was still queued")
	default:
	}
	if got := f.ClosedFlows(); len(got) != 0 {
		t.Fatalf("CloseFlow reached the adapter before the packets written ahead of it: %v", got)
	}
	g.release <- nil // "first" done; the next batch holds "a" (and "late")
	if b := g.next(t); b[0] != "a" {
		t.Fatalf("next batch %q does not start with a", b)
	}
	g.release <- nil
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("CloseFlow did not return after the packets ahead of it were handed over")
	}
	if got := f.ClosedFlows(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("closed flows %v, want [1]", got)
	}
}
