package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The workload: each initiator opens one TCP connection to the server
// through its node's SOCKS5 port and sends (onoff) or requests (web)
// fixed-size records, each stamped with the time it was written. Client
// and server run in this process (on threads that entered the
// initiator's and the server's namespaces), so they share one clock and
// every record gives a one-way latency through the tunnel.

// RecordSize is the size of a workload record: about one link frame of
// cleartext (a tunnel carries IP packets up to 1280 bytes, TCP segments
// of up to 1240).
const RecordSize = 1200

// PortBase + node number + 1 is the server port of that initiator: the
// ground truth of which node started which server-side connection.
const PortBase = 9000

// drain is how long a client keeps its connection open after the flow
// period, so that records in flight still arrive (and count).
const drain = 2 * time.Second

const (
	recUpload   = 1 // client → server data (onoff)
	recRequest  = 2 // client → server, asks for n response records (web)
	recResponse = 3 // server → client data (web)
)

// Workload is what every initiator does (experiment.Workload's fields).
type Workload struct {
	Kind string        // onoff or web
	Rate float64       // records/s while on (onoff) or requests/s (web)
	On   time.Duration // mean on period (onoff)
	Off  time.Duration // mean off period (onoff)
	Size float64       // mean response records (web), geometric
}

func (w Workload) withDefaults() Workload {
	if w.Kind == "" {
		w.Kind = "onoff"
	}
	if w.On <= 0 {
		w.On = 2 * time.Second
	}
	if w.Off <= 0 {
		w.Off = 2 * time.Second
	}
	if w.Size < 1 {
		w.Size = 20
	}
	return w
}

// meter collects delivered records: one-way latencies and bytes.
type meter struct {
	mu        sync.Mutex
	from, to  time.Time // only records written in [from, to) count
	latencies []time.Duration
	bytes     uint64
	records   uint64
}

func (m *meter) add(sent, now time.Time) {
	if sent.Before(m.from) || !sent.Before(m.to) {
		return
	}
	m.mu.Lock()
	m.latencies = append(m.latencies, now.Sub(sent))
	m.bytes += RecordSize
	m.records++
	m.mu.Unlock()
}

func putRecord(b []byte, kind byte, n uint32, at time.Time) {
	clear(b)
	binary.BigEndian.PutUint64(b[0:8], uint64(at.UnixNano()))
	b[8] = kind
	binary.BigEndian.PutUint32(b[9:13], n)
}

func parseRecord(b []byte) (kind byte, n uint32, at time.Time) {
	return b[8], binary.BigEndian.Uint32(b[9:13]), time.Unix(0, int64(binary.BigEndian.Uint64(b[0:8])))
}

// server accepts the initiators' connections, one port each.
type server struct {
	m     *meter
	mu    sync.Mutex
	lns   []net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// startServer listens (with listen) on addr:PortBase+i+1 for every
// initiator i.
func startServer(listen func(addr string) (net.Listener, error), addr netip.Addr, initiators []int, m *meter) (*server, error) {
	s := &server{m: m}
	for _, i := range initiators {
		ap := netip.AddrPortFrom(addr, uint16(PortBase+i+1))
		l, err := listen(ap.String())
		if err != nil {
			s.close()
			return nil, fmt.Errorf("server: %w", err)
		}
		s.lns = append(s.lns, l)
		s.wg.Add(1)
		go s.accept(l)
	}
	return s, nil
}

func (s *server) accept(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *server) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	in := make([]byte, RecordSize)
	out := make([]byte, RecordSize)
	for {
		if _, err := io.ReadFull(c, in); err != nil {
			return
		}
		now := time.Now()
		kind, n, at := parseRecord(in)
		switch kind {
		case recUpload:
			s.m.add(at, now)
		case recRequest:
			for range min(n, 1<<16) {
				putRecord(out, recResponse, 0, time.Now())
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	}
}

func (s *server) close() {
	s.mu.Lock()
	for _, l := range s.lns {
		l.Close()
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// clientResult is what one initiator's client did.
type clientResult struct {
	Node     int
	Connects int   // SOCKS connections established
	Written  int   // records written
	Err      error // the last error, if the flow could not run to the end
}

// runClient is initiator node's flow: it opens a connection to the
// server with dial (through the node's SOCKS5 port) and follows w from
// start until end.
func runClient(ctx context.Context, dial func(context.Context) (net.Conn, error), w Workload, rng *rand.Rand, start, end time.Time, m *meter, node int) clientResult {
	res := clientResult{Node: node}
	w = w.withDefaults()
	exp := func(mean time.Duration) time.Duration { return time.Duration(rng.ExpFloat64() * float64(mean)) }
	gap := time.Duration(math.MaxInt64 / 4)
	if w.Rate > 0 {
		gap = time.Duration(float64(time.Second) / w.Rate)
	}
	// The schedule, as in sim/traffic: every flow starts in an off period
	// (or waiting for its first request); events are Poisson.
	type event struct {
		at   time.Time
		kind byte
		n    uint32
	}
	var events []event
	switch w.Kind {
	case "web":
		p := 1 / w.Size
		for t := start.Add(exp(gap)); t.Before(end); t = t.Add(exp(gap)) {
			n := 1
			if p < 1 {
				n = 1 + int(math.Floor(math.Log(1-rng.Float64())/math.Log(1-p)))
			}
			events = append(events, event{at: t, kind: recRequest, n: uint32(min(n, 1<<16))})
		}
	default:
		on := false
		switchAt := start.Add(exp(w.Off))
		next := start.Add(exp(gap))
		for next.Before(end) || switchAt.Before(end) {
			if on && next.Before(switchAt) {
				if !next.Before(end) {
					break
				}
				events = append(events, event{at: next, kind: recUpload})
				next = next.Add(exp(gap))
				continue
			}
			on = !on
			if on {
				next = switchAt.Add(exp(gap))
				switchAt = switchAt.Add(exp(w.On))
			} else {
				switchAt = switchAt.Add(exp(w.Off))
			}
		}
	}

	// conn is written only by this goroutine, under mu so that a
	// cancellation can unblock a write in progress.
	var conn net.Conn
	var mu sync.Mutex
	setConn := func(c net.Conn) {
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		conn = c
		mu.Unlock()
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		if conn != nil {
			conn.SetDeadline(time.Now())
		}
		mu.Unlock()
	})
	defer stop()
	var readers sync.WaitGroup
	defer func() {
		setConn(nil)
		readers.Wait()
	}()
	connect := func() error {
		setConn(nil)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c, err := dial(cctx)
		if err != nil {
			return err
		}
		setConn(c)
		res.Connects++
		conn.SetDeadline(end.Add(drain))
		readers.Add(1)
		go func() { // responses (web); for onoff the server sends nothing
			defer readers.Done()
			b := make([]byte, RecordSize)
			for {
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				now := time.Now()
				if kind, _, at := parseRecord(b); kind == recResponse {
					m.add(at, now)
				}
			}
		}()
		return nil
	}
	// Connect at the start: the tunnel is built now, before the first on
	// period, as a real client's first packets would build it.
	for conn == nil && time.Now().Before(end) && ctx.Err() == nil {
		if err := connect(); err != nil {
			res.Err = err
			sleepUntil(ctx, time.Now().Add(time.Second))
		}
	}
	buf := make([]byte, RecordSize)
	for _, ev := range events {
		if !sleepUntil(ctx, ev.at) {
			break
		}
		for conn != nil || time.Now().Before(end) {
			if conn == nil {
				if err := connect(); err != nil {
					res.Err = err
					sleepUntil(ctx, time.Now().Add(time.Second))
					continue
				}
			}
			putRecord(buf, ev.kind, ev.n, time.Now())
			if _, err := conn.Write(buf); err != nil {
				res.Err = err
				setConn(nil)
				if ctx.Err() != nil {
					return res
				}
				continue
			}
			res.Written++
			break
		}
		if !time.Now().Before(end) {
			break
		}
	}
	// Let the last records and responses arrive before closing.
	sleepUntil(ctx, end.Add(drain))
	if res.Err != nil && conn != nil { // it failed once but reconnected and ran to the end
		res.Err = nil
	}
	return res
}

// sleepUntil waits until t or ctx ends; false if ctx ended.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// socksConnect opens a SOCKS5 CONNECT to dst through the proxy at socks,
// reached with dial.
func socksConnect(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), socks, dst netip.AddrPort) (net.Conn, error) {
	c, err := dial(ctx, "tcp", socks.String())
	if err != nil {
		return nil, fmt.Errorf("socks %s: %w", socks, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) {
		c.Close()
		return nil, fmt.Errorf("socks %s → %s: %w", socks, dst, err)
	}
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fail(err)
	}
	if sel[0] != 5 || sel[1] != 0 {
		return fail(fmt.Errorf("proxy refused no-auth (%x)", sel))
	}
	a4 := dst.Addr().As4()
	req := []byte{5, 1, 0, 1, a4[0], a4[1], a4[2], a4[3], byte(dst.Port() >> 8), byte(dst.Port())}
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	var rep [4]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return fail(err)
	}
	if rep[1] != 0 {
		return fail(fmt.Errorf("CONNECT refused, reply code %d", rep[1]))
	}
	var skip int
	switch rep[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fail(err)
		}
		skip = int(l[0]) + 2
	default:
		return fail(errors.New("bad address type in reply"))
	}
	if _, err := io.ReadFull(c, make([]byte, skip)); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
