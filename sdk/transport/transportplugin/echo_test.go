package transportplugin

import (
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// echoTransport sends every datagram back to itself in memory: as a
// plugin child it isolates the data channel's cost (host → child → host)
// from any network stack's.
type echoTransport struct {
	mu         sync.Mutex
	cond       sync.Cond
	bufs       [][]byte // a ring of echoQueue datagrams, preallocated
	lens       []int
	addrs      []netip.AddrPort
	head, tail int // next to read, next to write (mod echoQueue, counting up)
	closed     bool
}

const echoQueue = 4096

func newEcho(map[string]string) (transport.Transport, error) {
	if f := os.Getenv("TARZAN_ECHO_CPUPROFILE"); f != "" { // profile the child
		out, err := os.Create(f)
		if err != nil {
			return nil, err
		}
		pprof.StartCPUProfile(out)
	}
	e := &echoTransport{bufs: make([][]byte, echoQueue), lens: make([]int, echoQueue), addrs: make([]netip.AddrPort, echoQueue)}
	for i := range e.bufs {
		e.bufs[i] = make([]byte, transport.MaxDatagram)
	}
	e.cond.L = &e.mu
	return e, nil
}

func (e *echoTransport) Name() string { return "echo" }

func (e *echoTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	return netip.MustParseAddrPort("127.0.0.1:9"), nil
}

func (e *echoTransport) WriteBatch(pkts []transport.Packet) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range pkts {
		for e.tail-e.head == echoQueue && !e.closed {
			e.cond.Wait()
		}
		if e.closed {
			return transport.ErrClosed
		}
		i := e.tail % echoQueue
		e.lens[i] = copy(e.bufs[i], p.Buf[:p.N])
		e.addrs[i] = p.Addr
		e.tail++
	}
	e.cond.Broadcast()
	return nil
}

func (e *echoTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.tail == e.head && !e.closed {
		e.cond.Wait()
	}
	if e.closed {
		return 0, transport.ErrClosed
	}
	n := 0
	for n < len(pkts) && e.head < e.tail {
		i := e.head % echoQueue
		pkts[n].N = copy(pkts[n].Buf, e.bufs[i][:e.lens[i]])
		pkts[n].Addr = e.addrs[i]
		e.head++
		n++
	}
	e.cond.Broadcast()
	return n, nil
}

func (e *echoTransport) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.cond.Broadcast()
	pprof.StopCPUProfile()
	return nil
}

// BenchmarkEcho sends full frames through an echo child and back: the
// data channel twice. Run with TARZAN_DATACHAN=socket for the socket
// framing. Reports frames/s and CPU µs per frame of both processes.
func BenchmarkEcho(b *testing.B) {
	tr, err := Launch(helper(b, "echo"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	c := tr.(*client)
	if _, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		b.Fatal(err)
	}
	mode := "socket"
	if d := c.data.Get(); d != nil && d.shm != nil {
		mode = "shm"
	}
	b.Logf("data channel: %s", mode)
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := tr.ReadBatch(pkts)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	}()
	batch := make([]transport.Packet, transport.BatchSize)
	dst := netip.MustParseAddrPort("127.0.0.1:9")
	for i := range batch {
		batch[i] = transport.Packet{Addr: dst, Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	const window = 2048
	b.SetBytes(transport.MaxDatagram)
	cpu0 := procCPU(os.Getpid()) + procCPU(c.sup.PID())
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		if int64(sent)-got.Load() > window {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		k := min(len(batch), b.N-sent)
		if err := tr.WriteBatch(batch[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	for deadline := time.Now().Add(5 * time.Second); got.Load() < int64(b.N) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := procCPU(os.Getpid()) + procCPU(c.sup.PID()) - cpu0
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "frames/s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N), "cpu-µs/frame")
	if got.Load() != int64(b.N) {
		b.Fatalf("%d of %d frames came back", got.Load(), b.N)
	}
	tr.Close()
	<-done
}

// procCPU is user+system time of a process from /proc (0 if unreadable).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+sy) * 10 * time.Millisecond // USER_HZ = 100
}

// BenchmarkEchoRTT sends one frame through an echo child and waits for it
// to come back before sending the next: the latency of two crossings of a
// quiet data channel, where each side has gone to sleep (what a tunnel
// build or a first byte pays per hop). Run with TARZAN_DATACHAN=shm for
// the shared-memory rings. Reports the median and 90th percentile.
func BenchmarkEchoRTT(b *testing.B) {
	tr, err := Launch(helper(b, "echo"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		b.Fatal(err)
	}
	out := []transport.Packet{{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}}
	in := []transport.Packet{{Buf: make([]byte, transport.MaxDatagram)}}
	rtt := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		// A pause lets both sides go to sleep, as on a quiet path.
		time.Sleep(200 * time.Microsecond)
		t0 := time.Now()
		if err := tr.WriteBatch(out); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.ReadBatch(in); err != nil {
			b.Fatal(err)
		}
		rtt = append(rtt, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(rtt)
	b.ReportMetric(float64(rtt[len(rtt)/2].Nanoseconds())/1e3, "µs-median")
	b.ReportMetric(float64(rtt[len(rtt)*9/10].Nanoseconds())/1e3, "µs-p90")
}
