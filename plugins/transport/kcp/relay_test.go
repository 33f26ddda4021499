package kcp

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relay is a lossy link on loopback between one client (which talks to
// front) and one server: every datagram is dropped with probability loss
// and otherwise delivered delay later, in each direction. It stands in
// for tc netem, which this kernel lacks (no sch_netem, no iptables).
// It also records the largest datagram it saw.
type relay struct {
	front, back *net.UDPConn
	server      netip.AddrPort
	client      atomic.Pointer[netip.AddrPort]
	loss        float64
	delay       time.Duration
	wg          sync.WaitGroup
	maxSize     atomic.Int64
	bytes       atomic.Int64 // all bytes the relay read, both directions
	sizes       sync.Map     // int → struct{}: every size seen
}

func newRelay(t testing.TB, server netip.AddrPort, loss float64, delay time.Duration) *relay {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(8 << 20)
		_ = c.SetWriteBuffer(8 << 20)
		return c
	}
	r := &relay{front: listen(), back: listen(), server: server, loss: loss, delay: delay}
	r.wg.Add(2)
	go r.pump(r.front, r.back, func() (netip.AddrPort, bool) { return r.server, true }, true)
	go r.pump(r.back, r.front, func() (netip.AddrPort, bool) {
		if c := r.client.Load(); c != nil {
			return *c, true
		}
		return netip.AddrPort{}, false
	}, false)
	t.Cleanup(func() {
		r.front.Close()
		r.back.Close()
		r.wg.Wait()
	})
	return r
}

func (r *relay) addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

type delayed struct {
	at  time.Time
	buf []byte
}

// pump forwards from in to out through a delay line; fromClient learns
// the client's address.
func (r *relay) pump(in, out *net.UDPConn, dst func() (netip.AddrPort, bool), fromClient bool) {
	defer r.wg.Done()
	line := make(chan delayed, 1<<16)
	r.wg.Add(1)
	go func() { // the delay line: constant delay keeps order
		defer r.wg.Done()
		for d := range line {
			time.Sleep(time.Until(d.at))
			if a, ok := dst(); ok {
				_, _ = out.WriteToUDPAddrPort(d.buf, a)
			}
		}
	}()
	defer close(line)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 65536)
	for {
		n, from, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if fromClient {
			r.client.Store(&from)
		}
		if int64(n) > r.maxSize.Load() {
			r.maxSize.Store(int64(n))
		}
		r.sizes.Store(n, struct{}{})
		r.bytes.Add(int64(n))
		if rng.Float64() < r.loss {
			continue
		}
		select {
		case line <- delayed{at: time.Now().Add(r.delay), buf: append([]byte(nil), buf[:n]...)}:
		default: // the line is full: a queue overflow, also a loss
		}
	}
}

var netipLoopback = netip.MustParseAddrPort("127.0.0.1:0")
