package pathbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/pnat"
	"github.com/tarzan-net/tarzan/plugins/adapter/socks"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// alias is what the client asks for; the exit dials the loopback server.
var alias = netip.MustParseAddr("198.18.0.1")

// path is one socks adapter wired to one pnat exit, and a server that
// answers every connection with the number of bytes the client asks for
// (an 8-byte big-endian count), then closes.
type path struct {
	socksAddr netip.AddrPort
	server    netip.AddrPort
	close     func()
	buf       []byte // the client's read buffer, reused (one fetch at a time)
}

func newPath(tb testing.TB) *path {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			swg.Add(1)
			go func() {
				defer swg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	srv := ln.Addr().(*net.TCPAddr).AddrPort()

	pol, err := exitpolicy.Parse([]string{fmt.Sprintf("accept %s/32:%d", alias, srv.Port()), "reject *:*"})
	if err != nil {
		tb.Fatal(err)
	}
	ex, err := pnat.New(map[string]string{"alias": alias.String() + "=127.0.0.1", "allow_loopback": "true"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := ex.Open(adapter.Config{MTU: adapter.InnerMTU, ExitPolicy: pol}); err != nil {
		tb.Fatal(err)
	}
	cl, err := socks.New(map[string]string{"listen": "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := cl.Open(adapter.Config{MTU: adapter.InnerMTU}); err != nil {
		tb.Fatal(err)
	}
	var pwg sync.WaitGroup
	pwg.Add(2)
	go func() { defer pwg.Done(); pump(cl, ex) }()
	go func() { defer pwg.Done(); pump(ex, cl) }()
	return &path{
		socksAddr: cl.(*socks.Proxy).Addr(),
		server:    srv,
		buf:       make([]byte, 64<<10),
		close: func() {
			cl.Close()
			ex.Close()
			ln.Close()
			pwg.Wait()
			swg.Wait()
		},
	}
}

// serve reads the count, writes that many bytes and closes.
func serve(c net.Conn) {
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	n := int64(binary.BigEndian.Uint64(b[:]))
	buf := make([]byte, 64<<10)
	for n > 0 {
		k, err := c.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return
		}
		n -= int64(k)
	}
}

// pump moves batches from one adapter to the other, as the core would
// (with the tunnel's hops taken out).
func pump(from, to adapter.Adapter) {
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	for {
		n, err := from.ReadPackets(pkts)
		if err != nil {
			return
		}
		if _, err := to.WritePackets(pkts[:n]); errors.Is(err, adapter.ErrClosed) {
			return
		}
	}
}

// fetch connects through SOCKS5 (no authentication, an IPv4 target),
// asks for size bytes and reads them; it returns the time to the first
// byte.
func (p *path) fetch(size int64) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.Dial("tcp", p.socksAddr.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	a := alias.As4()
	req := []byte{5, 1, 0, 5, 1, 0, 1, a[0], a[1], a[2], a[3], 0, 0}
	binary.BigEndian.PutUint16(req[11:], p.server.Port())
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var rep [2 + 10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return 0, err
	}
	if rep[3] != 0 {
		return 0, fmt.Errorf("SOCKS reply %d", rep[3])
	}
	var cnt [8]byte
	binary.BigEndian.PutUint64(cnt[:], uint64(size))
	if _, err := c.Write(cnt[:]); err != nil {
		return 0, err
	}
	buf := p.buf
	k, err := c.Read(buf)
	ttfb := time.Since(t0)
	got := int64(k)
	for err == nil && got < size {
		k, err = c.Read(buf)
		got += int64(k)
	}
	if got != size {
		return ttfb, fmt.Errorf("got %d of %d bytes: %v", got, size, err)
	}
	return ttfb, nil
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDownload fetches 16 MiB per op through one connection.
func BenchmarkDownload(b *testing.B) {
	p := newPath(b)
	defer p.close()
	const size = 16 << 20
	if _, err := p.fetch(1); err != nil { // warm up: the stack group
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	c0 := cpuNow()
	for b.Loop() {
		if _, err := p.fetch(size); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkConnect opens a connection, fetches 1 KiB and closes, one at
// a time; ttfb-us is the median time from the SOCKS connect to the first
// byte of the answer.
func BenchmarkConnect(b *testing.B) {
	p := newPath(b)
	defer p.close()
	if _, err := p.fetch(1); err != nil {
		b.Fatal(err)
	}
	var ttfb []time.Duration
	b.ResetTimer()
	c0 := cpuNow()
	for b.Loop() {
		t, err := p.fetch(1024)
		if err != nil {
			b.Fatal(err)
		}
		ttfb = append(ttfb, t)
	}
	b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(median(ttfb).Microseconds()), "ttfb-us")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// TestPath checks the benchmark's wiring: bytes arrive whole.
func TestPath(t *testing.T) {
	p := newPath(t)
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []int64{1, 1024, 1 << 20} {
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		if _, err := p.fetch(n); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}
