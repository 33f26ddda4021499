package transporttest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// scribble is what the reader writes over a buffer it got back.
var scribble = bytes.Repeat([]byte{0xEE}, 1<<16)

// readTimeout bounds every wait for a datagram in the suite.
// (doubled under the race detector: race.go).
const readTimeout = 5 * time.Second * raceSlack

// Run checks that the transports newTransport makes honour the contract in
// package transport. newTransport must return a fresh, unbound transport
// each time; Run listens on loopback addresses (127.0.0.1, ::1, and the
// wildcards 0.0.0.0 and [::] with a loopback address advertised) and
// closes what it gets. Traffic stays on loopback, and every check is
// bounded in count and time.
//
// Like the core, Run calls the optional interfaces a transport implements:
// SetAdvertised after Listen (AdvertiseSetter), and it hands every
// transport the Params of every other one it listens beside
// (ParamsProvider, PeerParamsSetter), as descriptors would.
func Run(t *testing.T, newTransport func(t *testing.T) transport.Transport) {
	RunOptions(t, newTransport, Options{})
}

// Options adjust the suite for what a transport's design needs; the zero
// value is Run's.
type Options struct {
	// RestartWithin bounds how soon traffic flows again after a peer
	// restarted at the same address (default 10 s, doubled under the race
	// detector). A transport that must first fail a dial with the peer's
	// old credentials before it tries new ones (pt: a restarted obfs4
	// server with a new cert, and a dial that fails only on its handshake
	// timeout) may take longer; say why where you set it.
	RestartWithin time.Duration
}

// RunOptions is Run with opts.
func RunOptions(t *testing.T, newTransport func(t *testing.T) transport.Transport, opts Options) {
	s := suite{newTransport: newTransport, restartWithin: reconnectBound}
	if opts.RestartWithin > 0 {
		s.restartWithin = opts.RestartWithin * raceSlack
	}
	for _, c := range s.checks() {
		t.Run(c.name, c.run)
	}
}

// checks names the suite's checks, in the order Run runs them.
var checks = func() []string {
	var names []string
	for _, c := range (suite{}).checks() {
		names = append(names, c.name)
	}
	return names
}()

func (s suite) checks() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"Listen", s.listen},
		{"SingleDatagram", s.single},
		{"FullBatch", s.fullBatch},
		{"WriteBufferOwnership", s.writeOwnership},
		{"ReadBufferOwnership", s.readOwnership},
		{"OversizeDropped", s.oversize},
		{"CloseUnblocksRead", s.closeUnblocks},
		{"ConcurrentWrite", s.concurrentWrite},
		{"IPv6", s.ipv6},
		{"UnspecifiedAdvertised", s.unspecified},
		{"GonePeer", s.gonePeer},
		{"Backpressure", s.backpressure},
		{"PeerRestart", s.peerRestart},
		{"ManyPeers", s.manyPeers},
		{"Order", s.order},
		{"Throughput", s.throughput},
	}
}

type suite struct {
	newTransport  func(t *testing.T) transport.Transport
	restartWithin time.Duration // Options.RestartWithin
}

// env is one check's set of transports. It plays the core's part for the
// optional interfaces: every transport learns every other one's Params.
type env struct {
	t      *testing.T
	s      suite
	mu     sync.Mutex
	params map[netip.AddrPort]string
	nodes  []*node
}

// node is a listening transport under test, with a background reader so
// a test can wait for datagrams with a timeout.
type node struct {
	t       *testing.T
	tr      transport.Transport
	addr    netip.AddrPort // the advertised address (the bound one unless a wildcard)
	bound   netip.AddrPort
	bufN    int
	got     chan transport.Packet
	done    chan struct{}
	reading sync.Once
	closed  sync.Once
}

// start checks for goroutine leaks once the test's transports are closed
// (cleanups run last-in first-out, so this one runs last).
func (s suite) start(t *testing.T) *env {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	return &env{t: t, s: s, params: map[netip.AddrPort]string{}}
}

// node listens a new transport on 127.0.0.1:0 and starts reading.
func (e *env) node(bufN int) *node {
	e.t.Helper()
	n := e.listen("127.0.0.1:0", netip.AddrPort{}, bufN)
	n.read()
	return n
}

// listen listens a new transport on addr; adv (when valid) is the address
// it is told to advertise, with its port replaced by the bound one when 0.
// It does not start the reader (see read).
func (e *env) listen(addr string, adv netip.AddrPort, bufN int) *node {
	t := e.t
	t.Helper()
	tr := e.s.newTransport(t)
	ap := netip.MustParseAddrPort(addr)
	bound, err := tr.Listen(ap)
	if err != nil {
		tr.Close()
		t.Fatalf("Listen(%v): %v", ap, err)
	}
	if bound.Port() == 0 || (ap.Port() != 0 && bound.Port() != ap.Port()) || bound.Addr().Unmap() != ap.Addr() {
		tr.Close()
		t.Fatalf("Listen(%v) bound %v; want address %v and a non-zero port", ap, bound, ap.Addr())
	}
	if !adv.IsValid() {
		adv = bound
	} else if adv.Port() == 0 {
		adv = netip.AddrPortFrom(adv.Addr(), bound.Port())
	}
	if as, ok := tr.(transport.AdvertiseSetter); ok {
		if err := as.SetAdvertised(adv); err != nil {
			tr.Close()
			t.Fatalf("SetAdvertised(%v) after Listen(%v): %v", adv, ap, err)
		}
	}
	n := &node{t: t, tr: tr, addr: adv, bound: bound, bufN: bufN,
		got: make(chan transport.Packet, 4*transport.BatchSize), done: make(chan struct{})}
	e.introduce(n)
	t.Cleanup(n.close)
	return n
}

// introduce exchanges Params between n and every node of the check, as
// the core does from descriptors (ParamsProvider, PeerParamsSetter).
func (e *env) introduce(n *node) {
	params := ""
	if pp, ok := n.tr.(transport.ParamsProvider); ok {
		params = pp.Params()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.params[n.addr] = params
	for _, o := range e.nodes {
		if o.addr == n.addr {
			continue // a restarted node: n replaces o
		}
		tell(e.t, o.tr, n.addr, params)
		tell(e.t, n.tr, o.addr, e.params[o.addr])
	}
	e.nodes = append(e.nodes, n)
}

func tell(t *testing.T, tr transport.Transport, addr netip.AddrPort, params string) {
	if params == "" {
		return
	}
	if ps, ok := tr.(transport.PeerParamsSetter); ok {
		if err := ps.SetPeerParams(addr, params); err != nil {
			t.Errorf("SetPeerParams(%v, %q): %v", addr, params, err)
		}
	}
}

// read starts the node's reader (once).
func (n *node) read() { n.reading.Do(func() { go n.readLoop() }) }

func (n *node) readLoop() {
	defer close(n.done)
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, n.bufN)
	}
	for {
		k, err := n.tr.ReadBatch(pkts)
		if err != nil {
			if !errors.Is(err, transport.ErrClosed) {
				n.t.Errorf("ReadBatch: %v (want only transport.ErrClosed, after Close)", err)
			}
			return
		}
		for _, p := range pkts[:k] {
			// Hand out a copy, then scribble on the buffer: the transport
			// must not depend on it after ReadBatch returns.
			n.got <- transport.Packet{Addr: p.Addr, Buf: append([]byte(nil), p.Buf[:p.N]...), N: p.N}
			copy(p.Buf, scribble)
		}
	}
}

func (n *node) close() {
	n.closed.Do(func() {
		n.tr.Close()
		started := true
		n.reading.Do(func() { started = false })
		if !started {
			return
		}
		// Drain what is still queued, so that a reader blocked on a full
		// n.got sees the Close.
		deadline := time.After(readTimeout)
		for {
			select {
			case <-n.done:
				return
			case <-n.got:
			case <-deadline:
				n.t.Errorf("ReadBatch did not return within %v of Close", readTimeout)
				return
			}
		}
	})
}

// expect waits for count datagrams and returns them.
func (n *node) expect(count int) []transport.Packet {
	n.t.Helper()
	var out []transport.Packet
	deadline := time.After(readTimeout)
	for len(out) < count {
		select {
		case p := <-n.got:
			out = append(out, p)
		case <-deadline:
			n.t.Fatalf("received %d of %d datagrams within %v", len(out), count, readTimeout)
		}
	}
	return out
}

// quiet checks nothing more arrives for a moment.
func (n *node) quiet() {
	n.t.Helper()
	select {
	case p := <-n.got:
		n.t.Fatalf("unexpected datagram of %d bytes from %v", p.N, p.Addr)
	case <-time.After(100 * time.Millisecond):
	}
}

func (n *node) write(pkts []transport.Packet) {
	n.t.Helper()
	if err := n.tr.WriteBatch(pkts); err != nil {
		n.t.Fatalf("WriteBatch of %d datagrams: %v", len(pkts), err)
	}
}

// payload is datagram i of stream id: a header then a recognisable fill.
func payload(id, i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(id*31 + i*7 + j)
	}
	if size >= 4 {
		binary.BigEndian.PutUint16(b, uint16(id))
		binary.BigEndian.PutUint16(b[2:], uint16(i))
	}
	return b
}

func (s suite) listen(t *testing.T) {
	e := s.start(t)
	a := e.node(transport.MaxDatagram)
	if a.tr.Name() == "" {
		t.Error("Name() is empty")
	}
	if _, err := a.tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err == nil {
		t.Error("a second Listen succeeded; want an error")
	}
	if pp, ok := a.tr.(transport.ParamsProvider); ok {
		if err := paramsProblem(pp.Params()); err != nil {
			t.Errorf("Params() after Listen: %v", err)
		}
	}
}

// maxParams is the most a descriptor carries beside one address
// (core/descriptor.MaxTransportParams).
const maxParams = 510

// paramsProblem says what keeps params out of a descriptor.
func paramsProblem(params string) error {
	if len(params) > maxParams {
		return fmt.Errorf("%d bytes; a descriptor carries at most %d", len(params), maxParams)
	}
	for i := 0; i < len(params); i++ {
		if c := params[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("byte %d is %q; a descriptor carries printable ASCII without spaces", i, c)
		}
	}
	return nil
}

func (s suite) single(t *testing.T) {
	e := s.start(t)
	a, b := e.node(transport.MaxDatagram), e.node(transport.MaxDatagram)
	for _, dir := range [][2]*node{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		want := payload(1, 0, 100)
		from.write([]transport.Packet{{Addr: to.addr, Buf: want, N: len(want)}})
		p := to.expect(1)[0]
		if p.Addr != from.addr {
			t.Errorf("source address %v; want %v", p.Addr, from.addr)
		}
		if string(p.Buf) != string(want) {
			t.Errorf("payload corrupted: got %d bytes %x…, want %d bytes %x…", p.N, p.Buf[:min(8, p.N)], len(want), want[:8])
		}
	}
}

func (s suite) fullBatch(t *testing.T) {
	e := s.start(t)
	a, b := e.node(transport.MaxDatagram), e.node(transport.MaxDatagram)
	for id, dir := range [][2]*node{{a, b}, {b, a}} {
		from, to := dir[0], dir[1]
		batch := make([]transport.Packet, transport.BatchSize)
		for i := range batch {
			batch[i] = transport.Packet{Addr: to.addr, Buf: payload(id, i, transport.MaxDatagram), N: transport.MaxDatagram}
		}
		from.write(batch)
		checkSet(t, to.expect(len(batch)), from.addr, id, len(batch), transport.MaxDatagram)
	}
}

// checkSet checks that got holds datagrams 0..count-1 of stream id, each
// intact and from the right source, in any order.
func checkSet(t *testing.T, got []transport.Packet, from netip.AddrPort, id, count, size int) {
	t.Helper()
	seen := make(map[int]bool)
	for _, p := range got {
		if p.Addr != from {
			t.Fatalf("source address %v; want %v", p.Addr, from)
		}
		if p.N != size {
			t.Fatalf("datagram of %d bytes; want %d", p.N, size)
		}
		i := int(binary.BigEndian.Uint16(p.Buf[2:]))
		if string(p.Buf) != string(payload(id, i, size)) {
			t.Fatalf("datagram %d corrupted", i)
		}
		if seen[i] {
			t.Fatalf("datagram %d delivered twice", i)
		}
		seen[i] = true
	}
	if len(seen) != count {
		t.Fatalf("got %d distinct datagrams; want %d", len(seen), count)
	}
}

func (s suite) writeOwnership(t *testing.T) {
	e := s.start(t)
	a, b := e.node(transport.MaxDatagram), e.node(transport.MaxDatagram)
	const count = 16
	batch := make([]transport.Packet, count)
	for i := range batch {
		batch[i] = transport.Packet{Addr: b.addr, Buf: payload(2, i, 500), N: 500}
	}
	a.write(batch)
	for i := range batch { // the caller owns the buffers again
		for j := range batch[i].Buf {
			batch[i].Buf[j] = 0xFF
		}
	}
	checkSet(t, b.expect(count), a.addr, 2, count, 500)
}

func (s suite) readOwnership(t *testing.T) {
	e := s.start(t)
	// readLoop scribbles over every buffer after ReadBatch returns; later
	// datagrams must still arrive intact.
	a, b := e.node(transport.MaxDatagram), e.node(transport.MaxDatagram)
	for i := range 4 {
		p := payload(3, i, 300)
		a.write([]transport.Packet{{Addr: b.addr, Buf: p, N: len(p)}})
		checkSet(t, b.expect(1), a.addr, 3, 1, 300)
	}
}

func (s suite) oversize(t *testing.T) {
	e := s.start(t)
	a, b := e.node(transport.MaxDatagram), e.node(200)
	big, small := payload(4, 0, 400), payload(4, 1, 100)
	a.write([]transport.Packet{{Addr: b.addr, Buf: big, N: len(big)}})
	a.write([]transport.Packet{{Addr: b.addr, Buf: small, N: len(small)}})
	p := b.expect(1)[0]
	if p.N != len(small) || string(p.Buf) != string(small) {
		t.Fatalf("first datagram delivered has %d bytes; want the 100-byte one (a datagram larger than Buf must be dropped, not truncated)", p.N)
	}
	b.quiet()
}

func (s suite) closeUnblocks(t *testing.T) {
	s.start(t)
	tr := s.newTransport(t)
	if _, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		tr.Close()
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := tr.ReadBatch([]transport.Packet{{Buf: make([]byte, transport.MaxDatagram)}})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let ReadBatch block
	tr.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("blocked ReadBatch returned %v after Close; want transport.ErrClosed", err)
		}
	case <-time.After(readTimeout):
		t.Fatalf("Close did not unblock ReadBatch within %v", readTimeout)
	}
	if _, err := tr.ReadBatch([]transport.Packet{{Buf: make([]byte, 10)}}); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v; want transport.ErrClosed", err)
	}
	p := payload(5, 0, 10)
	if err := tr.WriteBatch([]transport.Packet{{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Buf: p, N: len(p)}}); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v; want transport.ErrClosed", err)
	}
}

func (s suite) concurrentWrite(t *testing.T) {
	e := s.start(t)
	a, b := e.node(transport.MaxDatagram), e.node(transport.MaxDatagram)
	const writers, batches, per = 4, 8, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range batches {
				batch := make([]transport.Packet, per)
				for i := range batch {
					batch[i] = transport.Packet{Addr: b.addr, Buf: payload(10+w, k*per+i, 200), N: 200}
				}
				if err := a.tr.WriteBatch(batch); err != nil {
					t.Errorf("concurrent WriteBatch: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := b.expect(writers * batches * per)
	for w := range writers {
		var mine []transport.Packet
		for _, p := range got {
			if int(binary.BigEndian.Uint16(p.Buf)) == 10+w {
				mine = append(mine, p)
			}
		}
		checkSet(t, mine, a.addr, 10+w, batches*per, 200)
	}
}
