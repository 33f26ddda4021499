package pt

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/transport/udp"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// procIO reads rchar and wchar of a process from /proc/PID/io.
func procIO(pid int) (r, w int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "rchar":
			r = n
		case "wchar":
			w = n
		}
	}
	return r, w
}

// procCPU is user+system time of a process from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ = 100
}

// pump sends frames full-size frames from → to (both listening), at most
// window in flight, and returns how many arrived and how long it took.
func pump(from, to transport.Transport, dst netip.AddrPort, frames, window int) (got int64, took time.Duration) {
	var recv atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := to.ReadBatch(pkts)
			if err != nil {
				return
			}
			recv.Add(int64(n))
		}
	}()
	batch := make([]transport.Packet, transport.BatchSize)
	for i := range batch {
		batch[i] = transport.Packet{Addr: dst, Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	// Warm up: the first frames open the stream (SOCKS, obfs4 handshake).
	for deadline := time.Now().Add(10 * time.Second); recv.Load() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		from.WriteBatch(batch[:1])
	}
	time.Sleep(100 * time.Millisecond)
	base := recv.Load()
	start := time.Now()
	last := start
	for sent := 0; sent < frames; {
		if int64(sent)-(recv.Load()-base) > int64(window) {
			if time.Since(last) > 2*time.Second {
				break // lost frames hold the window: stop
			}
			time.Sleep(50 * time.Microsecond)
			continue
		}
		k := min(len(batch), frames-sent)
		from.WriteBatch(batch[:k])
		sent += k
		last = time.Now()
	}
	for deadline := time.Now().Add(2 * time.Second); recv.Load()-base < int64(frames) && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
	}
	took = time.Since(start)
	got = recv.Load() - base
	to.Close()
	<-done
	return got, took
}

// BenchmarkFrames sends full-size frames one way through a pt (obfs4)
// pair and a udp pair, both in this process, and reports frames/s; for
// pt also the bytes obfs4proxy's client wrote to the network per frame
// (wire-B/frame, from /proc/PID/io; in-B/frame is what it read from us,
// 2+1408 per frame) and the four PT children's CPU per frame.
//
//	go test -run '^$' -bench Frames -benchtime 1x -count 3 ./plugins/transport/pt
func BenchmarkFrames(b *testing.B) {
	const frames, window = 20000, 512
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	b.Run("pt-obfs4", func(b *testing.B) {
		needPT(b)
		for range b.N {
			reg := &registry{m: map[netip.AddrPort]string{}}
			from, to := newPublished(b, reg, nil), newPublished(b, reg, nil)
			if _, err := from.Listen(lo); err != nil {
				b.Fatal(err)
			}
			dst, err := to.Listen(lo)
			if err != nil {
				b.Fatal(err)
			}
			var all []int
			for _, tr := range []*Transport{from.Transport, to.Transport} {
				for _, s := range []*supervised{tr.client, tr.server} {
					all = append(all, s.c.cmd.Process.Pid)
				}
			}
			cpu := func() (d time.Duration) {
				for _, p := range all {
					d += procCPU(p)
				}
				return d
			}
			// Snapshot after the warm-up inside pump would be better; the
			// handshake is a few hundred bytes against 20,000 frames.
			r0, w0 := procIO(all[0])
			c0 := cpu()
			got, took := pump(from, to, dst, frames, window)
			r1, w1 := procIO(all[0])
			c1 := cpu()
			from.Close()
			b.ReportMetric(float64(got)/took.Seconds(), "frames/s")
			b.ReportMetric(float64(w1-w0)/float64(got), "wire-B/frame")
			b.ReportMetric(float64(r1-r0)/float64(got), "in-B/frame")
			b.ReportMetric(float64((c1-c0).Microseconds())/float64(got), "pt-cpu-us/frame")
		}
	})
	b.Run("udp", func(b *testing.B) {
		for range b.N {
			from, _ := udp.New(nil)
			to, _ := udp.New(nil)
			if _, err := from.Listen(lo); err != nil {
				b.Fatal(err)
			}
			dst, err := to.Listen(lo)
			if err != nil {
				b.Fatal(err)
			}
			got, took := pump(from, to, dst, frames, window)
			from.Close()
			b.ReportMetric(float64(got)/took.Seconds(), "frames/s")
		}
	})
}
