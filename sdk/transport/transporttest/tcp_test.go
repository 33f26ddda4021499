package transporttest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// tcpTransport is a test-only stream transport over TCP, written the way
// the contract asks: one dialled connection per peer carrying a hello
// (the advertised address) and then length-prefixed frames; WriteBatch
// only queues (a full queue drops); a writer goroutine per peer dials,
// writes with a deadline and redials on the next write after a failure.
// It passes the suite (TestTCPConformance). Each flaw breaks it in one
// way a real stream transport has been broken, for broken_test.go.
type tcpTransport struct {
	flaw tcpFlaw

	mu     sync.Mutex
	ln     net.Listener
	bound  netip.AddrPort
	self   netip.AddrPort // what the hello names
	peers  map[netip.AddrPort]*tcpPeer
	conns  map[net.Conn]struct{}
	closed bool

	in   chan transport.Packet
	done chan struct{}
	wg   sync.WaitGroup

	drops atomic.Uint64
}

type tcpFlaw int

const (
	flawNone tcpFlaw = iota
	// flawStall: WriteBatch dials a new peer and waits for its
	// acknowledgement itself (up to 10 s), as a transport that does its
	// handshake in the caller would.
	flawStall
	// flawBlock: WriteBatch writes to the peer's connection itself, with
	// no queue and no deadline: a peer that stops reading blocks it.
	flawBlock
	// flawNoReconnect: a peer whose connection failed is never dialled
	// again.
	flawNoReconnect
	// flawEphemeralSource: ReadBatch reports the connection's remote
	// address (the dialler's ephemeral port), not the hello's.
	flawEphemeralSource
	// flawBoundHello: the hello names the bound address and SetAdvertised
	// is ignored: a wildcard listener tells peers 0.0.0.0.
	flawBoundHello
	// flawNoIPv6: Listen refuses IPv6 addresses.
	flawNoIPv6
	// flawKeyByIP: peers are looked up by IP address alone, so every peer
	// on one host shares the first one's connection.
	flawKeyByIP
)

const (
	tcpQueue       = 256
	tcpDialTimeout = 2 * time.Second
	tcpWriteLimit  = 2 * time.Second
)

func newTCP(flaw tcpFlaw) *tcpTransport {
	return &tcpTransport{flaw: flaw, peers: map[netip.AddrPort]*tcpPeer{}, conns: map[net.Conn]struct{}{},
		in: make(chan transport.Packet, tcpQueue), done: make(chan struct{})}
}

func (t *tcpTransport) Name() string { return "tcptest" }

func (t *tcpTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return netip.AddrPort{}, transport.ErrClosed
	case t.ln != nil:
		return netip.AddrPort{}, errors.New("tcptest: already listening")
	case t.flaw == flawNoIPv6 && addr.Addr().Is6() && !addr.Addr().Is4In6():
		return netip.AddrPort{}, errors.New("tcptest: IPv6 not supported")
	}
	network := "tcp4"
	if addr.Addr().Is6() {
		network = "tcp6"
	}
	ln, err := net.Listen(network, addr.String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	bound := ln.Addr().(*net.TCPAddr).AddrPort()
	t.ln, t.bound, t.self = ln, bound, bound
	t.wg.Add(1)
	go t.accept(ln)
	return bound, nil
}

func (t *tcpTransport) SetAdvertised(adv netip.AddrPort) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flaw != flawBoundHello {
		t.self = adv
	}
	return nil
}

// track registers a connection so Close can close it; false: closed.
func (t *tcpTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *tcpTransport) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *tcpTransport) accept(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !t.track(c) {
			continue
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve reads one inbound connection: the hello, an acknowledgement
// byte back, then frames.
func (t *tcpTransport) serve(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:1]); err != nil {
		return
	}
	hello := make([]byte, hdr[0])
	if _, err := io.ReadFull(c, hello); err != nil {
		return
	}
	from, err := netip.ParseAddrPort(string(hello))
	if err != nil {
		return
	}
	if t.flaw == flawEphemeralSource {
		from = c.RemoteAddr().(*net.TCPAddr).AddrPort()
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if _, err := c.Write([]byte{1}); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		select {
		case t.in <- transport.Packet{Addr: from, Buf: b, N: len(b)}:
		case <-t.done:
			return
		}
	}
}

func (t *tcpTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	n := 0
	for n < len(pkts) {
		var p transport.Packet
		if n == 0 {
			select {
			case p = <-t.in:
			case <-t.done:
				return 0, transport.ErrClosed
			}
		} else {
			select {
			case p = <-t.in:
			default:
				return n, nil
			}
		}
		if p.N > len(pkts[n].Buf) {
			t.drops.Add(1)
			continue
		}
		pkts[n].N = copy(pkts[n].Buf, p.Buf[:p.N])
		pkts[n].Addr = p.Addr
		n++
	}
	return n, nil
}

// tcpPeer is one destination: a queue and the goroutine that empties it.
type tcpPeer struct {
	addr netip.AddrPort
	q    chan []byte
	mu   sync.Mutex // flawBlock and flawStall: serialises the caller's own dial and writes
	conn net.Conn   // flawBlock and flawStall: the connection dialled in WriteBatch
	dead bool       // flawNoReconnect
}

func (t *tcpTransport) peer(addr netip.AddrPort) (*tcpPeer, bool) {
	key := addr
	if t.flaw == flawKeyByIP {
		key = netip.AddrPortFrom(addr.Addr(), 0)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	p := t.peers[key]
	if p == nil {
		p = &tcpPeer{addr: addr, q: make(chan []byte, tcpQueue)}
		t.peers[key] = p
		if t.flaw != flawBlock {
			t.wg.Add(1)
			go t.writer(p)
		}
	}
	return p, true
}

func (t *tcpTransport) WriteBatch(pkts []transport.Packet) error {
	for _, pk := range pkts {
		p, ok := t.peer(pk.Addr)
		if !ok {
			return transport.ErrClosed
		}
		frame := make([]byte, 2+pk.N)
		binary.BigEndian.PutUint16(frame, uint16(pk.N))
		copy(frame[2:], pk.Buf[:pk.N])
		switch t.flaw {
		case flawBlock:
			t.writeNow(p, frame)
			continue
		case flawStall:
			p.mu.Lock()
			if p.conn == nil {
				p.conn = t.dial(p.addr, true)
			}
			p.mu.Unlock()
		}
		select {
		case p.q <- frame:
		default:
			t.drops.Add(1)
		}
	}
	return nil
}

// writeNow is flawBlock's write: dial if needed, then write in the caller.
func (t *tcpTransport) writeNow(p *tcpPeer, frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		if p.conn = t.dial(p.addr, false); p.conn == nil {
			t.drops.Add(1)
			return
		}
	}
	if _, err := p.conn.Write(frame); err != nil {
		t.untrack(p.conn)
		p.conn = nil
		t.drops.Add(1)
	}
}

// dial connects to addr and sends the hello; with waitAck it also waits
// (up to 10 s) for the peer's acknowledgement. nil: failed.
func (t *tcpTransport) dial(addr netip.AddrPort, waitAck bool) net.Conn {
	c, err := net.DialTimeout("tcp", addr.String(), tcpDialTimeout)
	if err != nil {
		return nil
	}
	if !t.track(c) {
		return nil
	}
	t.mu.Lock()
	self := t.self.String()
	t.mu.Unlock()
	if _, err := c.Write(append([]byte{byte(len(self))}, self...)); err != nil {
		t.untrack(c)
		return nil
	}
	if waitAck {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ack [1]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			t.untrack(c)
			return nil
		}
	}
	// Watch the connection: the acknowledgement, then EOF or an error
	// when the peer goes away, which makes the next write fail at once.
	c.SetReadDeadline(time.Time{})
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.Close()
		return nil
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		io.Copy(io.Discard, c)
		c.Close()
	}()
	return c
}

// writer empties one peer's queue onto its connection, dialling on the
// first frame and again on the next frame after a failure.
func (t *tcpTransport) writer(p *tcpPeer) {
	defer t.wg.Done()
	var c net.Conn
	defer func() {
		if c != nil {
			t.untrack(c)
		}
	}()
	for {
		var frame []byte
		select {
		case frame = <-p.q:
		case <-t.done:
			return
		}
		if p.dead {
			t.drops.Add(1)
			continue
		}
		if c == nil {
			p.mu.Lock()
			c, p.conn = p.conn, nil // flawStall dialled it already
			p.mu.Unlock()
		}
		if c == nil {
			if c = t.dial(p.addr, false); c == nil {
				t.drops.Add(1)
				p.dead = t.flaw == flawNoReconnect
				continue
			}
		}
		c.SetWriteDeadline(time.Now().Add(tcpWriteLimit))
		if _, err := c.Write(frame); err != nil {
			t.untrack(c)
			c = nil
			t.drops.Add(1)
			p.dead = t.flaw == flawNoReconnect
		}
	}
}

func (t *tcpTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	if t.ln != nil {
		t.ln.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}
