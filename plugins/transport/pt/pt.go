package pt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Name is the transport's registered name.
const Name = "pt"

const (
	queueLen    = 512              // frames waiting per peer before drops
	rxLen       = 1024             // decoded frames waiting for ReadBatch
	dialTimeout = 10 * time.Second // SOCKS5 + PT handshake
	writeStall  = 5 * time.Second  // a stream that takes longer to accept a write is dropped
	helloMagic  = "TZPT\x01"
	maxBackoff  = 5 * time.Second
)

// Transport carries frames over a managed Tor pluggable transport.
type Transport struct {
	bin, method, stateDir, serverOpts string
	ownState                          bool // stateDir is a temporary directory we remove
	advertise                         netip.AddrPort
	static                            map[netip.AddrPort]string
	peersFile                         string
	log                               *slog.Logger

	mu       sync.Mutex
	listened bool
	closed   bool
	self     netip.AddrPort
	args     string                     // our server's ARGS
	params   map[netip.AddrPort]*argSet // learned from descriptors (params.go)
	resolver func(netip.AddrPort) (string, bool)
	peers    map[netip.AddrPort]*peer
	conns    map[net.Conn]struct{}
	ln       net.Listener
	client   *supervised
	server   *supervised

	rx   chan frame
	done chan struct{}
	wg   sync.WaitGroup
	pool sync.Pool

	stats struct {
		queueDrops, rxOversize, noArgs, dials, dialFails, streamsIn, badHello, restarts atomic.Uint64
		paramsRefused, paramsRotated                                                    atomic.Uint64
	}
}

type frame struct {
	addr netip.AddrPort
	b    *[transport.MaxDatagram]byte
	n    int
}

// New makes an unbound pt transport. Options:
//
//	binary       the PT executable (default obfs4proxy, looked up in PATH)
//	method       the PT method (default obfs4)
//	state_dir    TOR_PT_STATE_LOCATION, created 0700; it keeps the server's
//	             keys (obfs4's cert) across restarts. Empty: a temporary
//	             directory removed at Close (a new cert every start).
//	server_options  k=v;k=v handed to the server (e.g. iat-mode=1)
//	advertise    the address told to peers in our hello (default: bound)
//	peers        "ADDR ARGS; ADDR ARGS": each peer's PT arguments
//	peers_file   a file of "ADDR ARGS" lines, re-read when a peer is unknown
func New(options map[string]string) (transport.Transport, error) {
	t := &Transport{
		bin: "obfs4proxy", method: "obfs4",
		static: map[netip.AddrPort]string{}, params: map[netip.AddrPort]*argSet{},
		peers: map[netip.AddrPort]*peer{}, conns: map[net.Conn]struct{}{},
		rx: make(chan frame, rxLen), done: make(chan struct{}),
		log: pluginkit.Logger(),
	}
	t.pool.New = func() any { return new([transport.MaxDatagram]byte) }
	for k, v := range options {
		var err error
		switch k {
		case "binary":
			t.bin = v
		case "method":
			t.method = v
		case "state_dir":
			t.stateDir = v
		case "server_options":
			t.serverOpts = v
		case "advertise":
			t.advertise, err = netip.ParseAddrPort(v)
		case "peers":
			err = parsePeers(v, ";", t.static)
		case "peers_file":
			t.peersFile = v
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return nil, fmt.Errorf("pt: option %s: %w", k, err)
		}
	}
	if t.method == "" || strings.ContainsAny(t.method, " ,;:-=") {
		return nil, fmt.Errorf("pt: option method %q: want a PT method name such as obfs4", t.method)
	}
	bin, err := exec.LookPath(t.bin)
	if err != nil {
		return nil, fmt.Errorf("pt: option binary: %w (Debian: apt-get install obfs4proxy)", err)
	}
	t.bin = bin
	return t, nil
}

// parsePeers reads "ADDR ARGS" entries separated by sep into m.
func parsePeers(s, sep string, m map[netip.AddrPort]string) error {
	for _, e := range strings.Split(s, sep) {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		a, args, _ := strings.Cut(e, " ")
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("peer %q: %w", e, err)
		}
		args = strings.TrimSpace(args)
		if _, err := splitArgs(args); err != nil {
			return fmt.Errorf("peer %v: %w", ap, err)
		}
		m[ap] = args
	}
	return nil
}

// Name implements transport.Transport.
func (t *Transport) Name() string { return Name }

// Params returns the arguments a client needs to reach this node's PT
// server (obfs4: cert=…,iat-mode=…), as the server printed them; valid
// after Listen.
func (t *Transport) Params() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !publishable(t.args) {
		return "" // the descriptor could not carry it: bridge line only
	}
	return t.args
}

// publishable says whether args fits a descriptor's transport parameters
// (core/descriptor: at most 510 bytes of printable ASCII without spaces).
func publishable(args string) bool {
	if len(args) > 510 {
		return false
	}
	for i := 0; i < len(args); i++ {
		if args[i] <= ' ' || args[i] > '~' {
			return false
		}
	}
	return true
}

// SetResolver installs a function asked for a peer's arguments when no
// other source knows them (tests; a host with its own directory).
func (t *Transport) SetResolver(f func(netip.AddrPort) (string, bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resolver = f
}

// Listen starts the PT server on addr (forwarding to a private loopback
// port of ours) and the PT client, and returns the server's address.
func (t *Transport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return netip.AddrPort{}, transport.ErrClosed
	}
	if t.listened {
		return netip.AddrPort{}, errors.New("pt: already listening")
	}
	t.listened = true
	if err := t.makeStateDir(); err != nil {
		return netip.AddrPort{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("pt: ORPort listener: %w", err)
	}
	orPort := ln.Addr().(*net.TCPAddr).AddrPort()
	count := func() { t.stats.restarts.Add(1) }
	srv, err := newSupervised(&proxy{bin: t.bin, method: t.method, stateDir: t.stateDir, server: true,
		bind: addr, orPort: orPort, options: t.serverOpts, log: t.log}, count)
	if err != nil {
		ln.Close()
		return netip.AddrPort{}, err
	}
	cli, err := newSupervised(&proxy{bin: t.bin, method: t.method, stateDir: t.stateDir, log: t.log}, count)
	if err != nil {
		srv.kill()
		ln.Close()
		return netip.AddrPort{}, err
	}
	m := srv.method()
	t.ln, t.server, t.client, t.args = ln, srv, cli, m.args
	t.self = m.addr
	if t.advertise.IsValid() {
		t.self = t.advertise
	}
	t.writeBridge()
	t.log.Info("pt transport listening", "pt", t.method, "addr", m.addr, "advertise", t.self)
	t.wg.Add(1)
	go t.acceptLoop(ln)
	if addr.Addr().Is4() && m.addr.Addr().IsUnspecified() { // the PT child says [::] for 0.0.0.0
		return netip.AddrPortFrom(addr.Addr(), m.addr.Port()), nil
	}
	return m.addr, nil
}

// writeBridge writes the bridge line, "ADDR ARGS", to state_dir/bridge
// for operators and for tools that hand it to peers. Caller holds t.mu.
func (t *Transport) writeBridge() {
	line := t.self.String() + " " + t.args + "\n"
	if err := os.WriteFile(filepath.Join(t.stateDir, "bridge"), []byte(line), 0o600); err != nil {
		t.log.Warn("pt: cannot write bridge file", "err", err)
	}
}

// SetAdvertised implements transport.AdvertiseSetter: the address the
// node's descriptor gives for this transport, which our hello names and
// the bridge line carries (a server listening on 0.0.0.0 or [::] cannot
// tell it). It overrides the advertise option, with a warning if the two
// differ.
func (t *Transport) SetAdvertised(addr netip.AddrPort) error {
	if !addr.IsValid() || addr.Port() == 0 || addr.Addr().IsUnspecified() {
		return fmt.Errorf("pt: advertised address %v: want a reachable address and port", addr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.listened {
		return errors.New("pt: SetAdvertised before Listen")
	}
	if t.advertise.IsValid() && t.advertise != addr {
		t.log.Warn("pt: option advertise differs from the node's advertised address; using the node's", "option", t.advertise, "node", addr)
	}
	if t.self != addr {
		t.self = addr
		t.writeBridge()
	}
	return nil
}

func (t *Transport) makeStateDir() error {
	if t.stateDir == "" {
		d, err := os.MkdirTemp("", "tarzan-pt-")
		if err != nil {
			return fmt.Errorf("pt: state dir: %w", err)
		}
		t.stateDir, t.ownState = d, true
		return nil
	}
	if err := os.MkdirAll(t.stateDir, 0o700); err != nil {
		return fmt.Errorf("pt: state dir: %w", err)
	}
	return os.Chmod(t.stateDir, 0o700)
}

// WriteBatch queues each frame on its peer's stream and never blocks: a
// full queue drops the frame and counts it.
func (t *Transport) WriteBatch(pkts []transport.Packet) error {
	select {
	case <-t.done:
		return transport.ErrClosed
	default:
	}
	for i := range pkts {
		p := &pkts[i]
		if p.N > transport.MaxDatagram || p.N <= 0 {
			t.stats.queueDrops.Add(1)
			continue
		}
		pr := t.peer(p.Addr)
		if pr == nil {
			return transport.ErrClosed
		}
		b := t.pool.Get().(*[transport.MaxDatagram]byte)
		copy(b[:], p.Buf[:p.N])
		select {
		case pr.q <- frame{addr: p.Addr, b: b, n: p.N}:
		default:
			t.pool.Put(b)
			t.stats.queueDrops.Add(1)
		}
	}
	return nil
}

// ReadBatch returns decoded frames, the source being the peer's listening
// address (from its hello, or the address we dialled).
func (t *Transport) ReadBatch(pkts []transport.Packet) (int, error) {
	n := 0
	for n == 0 {
		var f frame
		select {
		case f = <-t.rx:
		case <-t.done:
			return 0, transport.ErrClosed
		}
	fill:
		for {
			if f.n <= len(pkts[n].Buf) {
				pkts[n].N = copy(pkts[n].Buf, f.b[:f.n])
				pkts[n].Addr = f.addr
				n++
			} else {
				t.stats.rxOversize.Add(1)
			}
			t.pool.Put(f.b)
			if n == len(pkts) {
				break
			}
			select {
			case f = <-t.rx:
			default:
				break fill
			}
		}
	}
	return n, nil
}

// Close stops the streams and the PT children.
func (t *Transport) Close() error {
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
	srv, cli := t.server, t.client
	t.mu.Unlock()
	t.wg.Wait()
	if cli != nil {
		cli.kill()
	}
	if srv != nil {
		srv.kill()
	}
	if t.ownState {
		os.RemoveAll(t.stateDir)
	}
	return nil
}

// Stats reports the transport's counters (transportplugin.StatsReporter).
func (t *Transport) Stats() map[string]uint64 {
	s := &t.stats
	return map[string]uint64{
		"queue_drops": s.queueDrops.Load(), "rx_oversize": s.rxOversize.Load(),
		"no_args": s.noArgs.Load(), "dials": s.dials.Load(), "dial_failures": s.dialFails.Load(),
		"streams_in": s.streamsIn.Load(), "bad_hello": s.badHello.Load(), "pt_restarts": s.restarts.Load(),
		"params_refused": s.paramsRefused.Load(), "params_rotated": s.paramsRotated.Load(),
	}
}

// track registers a live stream so Close can end it; false after Close.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

// argsFor finds the PT arguments to dial addr with: the current of the
// candidates learned from descriptors (params.go), among which the
// operator's line (peers option, else peers_file, re-read) counts as one
// more; else the operator's line; else the resolver.
func (t *Transport) argsFor(addr netip.AddrPort) (string, bool) {
	t.mu.Lock()
	conf, ok := t.static[addr]
	res, file := t.resolver, t.peersFile
	t.mu.Unlock()
	if !ok && file != "" {
		if b, err := os.ReadFile(file); err == nil {
			m := map[netip.AddrPort]string{}
			if err := parsePeers(string(b), "\n", m); err != nil {
				t.log.Warn("pt: peers_file", "file", file, "err", err)
			}
			conf, ok = m[addr]
		}
	}
	t.mu.Lock()
	if s := t.params[addr]; s != nil && len(s.cands) > 0 {
		if ok {
			s.add(conf)
		}
		a := s.cands[s.cur]
		t.mu.Unlock()
		return a, true
	}
	t.mu.Unlock()
	if ok {
		return conf, true
	}
	if res != nil {
		return res(addr)
	}
	return "", false
}

func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !t.track(c) {
			c.Close()
			return
		}
		t.stats.streamsIn.Add(1)
		t.wg.Add(1)
		go t.serveInbound(c)
	}
}

// serveInbound reads a stream the PT server forwarded to us: a hello
// naming the peer's listening address, then frames.
func (t *Transport) serveInbound(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	c.SetReadDeadline(time.Now().Add(dialTimeout))
	br := bufio.NewReaderSize(c, 64<<10)
	from, err := readHello(br)
	if err != nil {
		t.stats.badHello.Add(1)
		t.log.Debug("pt: bad hello", "err", err)
		return
	}
	c.SetReadDeadline(time.Time{})
	pr := t.peer(from)
	if pr == nil {
		return
	}
	pr.setInbound(c)
	defer pr.clearInbound(c)
	t.readFrames(br, from)
}

// readFrames decodes length-prefixed frames until the stream ends.
func (t *Transport) readFrames(r io.Reader, from netip.AddrPort) {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 || n > transport.MaxDatagram {
			t.log.Debug("pt: bad frame length; closing stream", "peer", from, "len", n)
			return
		}
		b := t.pool.Get().(*[transport.MaxDatagram]byte)
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			t.pool.Put(b)
			return
		}
		select {
		case t.rx <- frame{addr: from, b: b, n: n}:
		case <-t.done:
			t.pool.Put(b)
			return
		}
	}
}

func hello(self netip.AddrPort) []byte {
	s := self.String()
	b := append([]byte(helloMagic), byte(len(s)))
	return append(b, s...)
}

func readHello(r io.Reader) (netip.AddrPort, error) {
	var h [len(helloMagic) + 1]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return netip.AddrPort{}, err
	}
	if string(h[:len(helloMagic)]) != helloMagic {
		return netip.AddrPort{}, errors.New("bad magic")
	}
	s := make([]byte, h[len(helloMagic)])
	if _, err := io.ReadFull(r, s); err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := netip.ParseAddrPort(string(s))
	if err != nil || ap.Port() == 0 || !ap.Addr().IsValid() {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
