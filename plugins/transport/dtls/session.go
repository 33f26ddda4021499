package dtls

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/ciphersuite"
	"github.com/pion/dtls/v3/pkg/crypto/elliptic"
	"github.com/pion/logging"

	"github.com/tarzan-net/tarzan/plugins/transport/internal/rxqueue"
)

// A session is one DTLS association with one peer address. Its goroutine
// (run) owns the pion connection: it runs the handshake, flushes the
// datagrams queued meanwhile, then reads decrypted datagrams into the
// transport's receive queue until the session ends. The receive loop
// feeds it raw records through in; pion writes records straight to the
// shared socket through the session's netConn.
type session struct {
	t      *dtlsTransport
	client bool
	in     chan []byte     // raw datagrams from the receive loop
	ctx    context.Context // cancelled by close: ends the handshake
	cancel context.CancelFunc
	closed chan struct{} // closed once: netConn reads return EOF
	once   sync.Once

	addr      atomic.Pointer[netip.AddrPort] // where records go; changes on migration
	detached  atomic.Bool                    // lost a simultaneous open: swallow what pion writes
	ourHello  atomic.Pointer[[32]byte]       // random of the ClientHello we sent (client role)
	peerHello atomic.Pointer[[32]byte]       // random of the ClientHello that opened it (server role)
	maxSeq    atomic.Uint64                  // highest epoch≥1 record number seen from addr

	mu    sync.Mutex
	queue [][]byte   // datagrams written before the handshake finished
	conn  *dtls.Conn // set once the handshake is done
	peer  ed25519.PublicKey
	keys  *ciphersuite.GCM // the peer's write key, to recognise it at a new address
	dead  bool             // the handshake failed or the session closed
	// movedTo is the session that took over this one's queue when it lost
	// a simultaneous open: a writer that looked this session up just
	// before the swap queues there instead of into a session that is gone.
	movedTo *session

	// Guarded by t.mu:
	counted  bool     // counts against t.handshakes (server role, not yet up)
	next     *session // a handshake running alongside to replace this one
	replaces *session // the session this one will replace once up
	aliases  []netip.AddrPort
}

// newSession registers nothing; the caller (holding t.mu, transport open)
// puts it in t.sessions and then calls start.
func (t *dtlsTransport) newSession(addr netip.AddrPort, client bool) *session {
	s := &session{t: t, client: client, in: make(chan []byte, 512), closed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	s.addr.Store(&addr)
	return s
}

func (s *session) start() {
	s.t.wg.Add(1)
	go s.run()
}

func (s *session) remote() netip.AddrPort { return *s.addr.Load() }

func (s *session) identity() ed25519.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer
}

func (s *session) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// deliver hands a copy of a received datagram to pion, dropping it if the
// session is backed up.
func (s *session) deliver(b []byte) {
	select {
	case s.in <- append([]byte(nil), b...):
	default:
		s.t.stats.inputDrops.Add(1)
	}
}

// close ends the session: a running handshake fails, an established
// session sends close_notify. The goroutine then unregisters it.
func (s *session) close() {
	s.cancel()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close() // closes the netConn too
	}
	s.closeNetConn()
}

func (s *session) closeNetConn() { s.once.Do(func() { close(s.closed) }) }

func (s *session) run() {
	t := s.t
	defer t.wg.Done()
	defer t.forget(s)

	ctx, cancel := context.WithTimeout(s.ctx, t.opts.handshakeTimeout)
	var c *dtls.Conn
	var err error
	// pion/dtls v3 builds the connection first and handshakes on demand;
	// the handshake runs here, bounded, so a session is either up or gone.
	if s.client {
		c, err = dtls.Client(netConn{s}, net.UDPAddrFromAddrPort(s.remote()), s.config())
	} else {
		c, err = dtls.Server(netConn{s}, net.UDPAddrFromAddrPort(s.remote()), s.config())
	}
	if err == nil {
		if err = c.HandshakeContext(ctx); err != nil {
			_ = c.Close()
		}
	}
	cancel()
	if err != nil {
		s.closeNetConn()
		s.mu.Lock()
		s.dead = true
		dropped := len(s.queue)
		s.queue = nil
		s.mu.Unlock()
		t.stats.sendDrops.Add(uint64(dropped))
		if !s.detached.Load() && s.ctx.Err() == nil {
			t.stats.handshakeFailures.Add(1)
		}
		return
	}
	defer c.Close()
	keys, _ := peerWriteKey(c) // nil: the session cannot migrate, nothing worse

	s.mu.Lock()
	if s.dead || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.conn, s.keys = c, keys
	for _, b := range s.queue {
		if _, err := c.Write(b); err != nil {
			t.stats.sendDrops.Add(1)
		}
	}
	s.queue = nil
	s.mu.Unlock()
	t.stats.handshakes.Add(1)
	t.sessionUp(s)
	s.readLoop(c)
}

// readLoop moves decrypted datagrams to the transport's receive queue.
func (s *session) readLoop(c *dtls.Conn) {
	t := s.t
	buf := make([]byte, 1<<14) // more than any record pion accepts
	for {
		n, err := c.Read(buf)
		if err != nil {
			return // closed by either side; a later write starts afresh
		}
		if n > MaxPayload {
			t.stats.oversize.Add(1)
			continue
		}
		b := rxPool.Get().(*[]byte)
		copy(*b, buf[:n])
		select {
		case t.rx.C <- rxqueue.Datagram{Addr: s.remote(), Buf: b, N: n}:
		case <-t.done:
			rxPool.Put(b)
			return
		}
	}
}

var quietLogs = func() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}()

func (s *session) config() *dtls.Config {
	t := s.t
	return &dtls.Config{
		CipherSuites:         []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		EllipticCurves:       []elliptic.Curve{elliptic.X25519},
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		ClientAuth:           dtls.RequireAnyClientCert,
		// Chains, names and dates mean nothing here: VerifyPeerCertificate
		// checks the endorsement, which is all a peer's certificate says.
		InsecureSkipVerify: true,
		// Answer every ClientHello with a HelloVerifyRequest cookie first,
		// so a spoofed source gets no certificate flight and costs no
		// public-key work (RFC 6347 §4.2.1). This is pion's default; it is
		// spelled out because it matters.
		InsecureSkipVerifyHello: false,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := verifyPeer(raw, t.expected(s.remote()))
			if err != nil {
				t.stats.rejected.Add(1)
				return err
			}
			s.mu.Lock()
			s.peer = id
			s.mu.Unlock()
			return nil
		},
		GetCertificate: func(*dtls.ClientHelloInfo) (*tls.Certificate, error) {
			return &t.cert.Load().cert, nil
		},
		GetClientCertificate: func(*dtls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &t.cert.Load().cert, nil
		},
		FlightInterval:         500 * time.Millisecond,
		MTU:                    1400,         // handshake fragments; application records are never split
		ReplayProtectionWindow: replayWindow, // a batch may be reordered on the way
		LoggerFactory:          quietLogs,
	}
}

// replayWindow is pion's replay window, in records.
const replayWindow = 1024

func (t *dtlsTransport) expected(addr netip.AddrPort) ed25519.PublicKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expect[addr]
}

// netConn is what pion reads records from and writes records to: a
// packet connection to exactly one peer. Reads report the session's
// current address and writes go to it, whatever address pion names: a
// migration (migrate.go) moves the session without pion knowing.
type netConn struct{ s *session }

func (c netConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.s.in:
		return copy(b, p), net.UDPAddrFromAddrPort(c.s.remote()), nil
	case <-c.s.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c netConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	s := c.s
	if s.detached.Load() {
		return len(b), nil
	}
	if s.client && s.ourHello.Load() == nil {
		if r, ok := clientHelloRandom(b); ok {
			s.ourHello.CompareAndSwap(nil, &r)
		}
	}
	select {
	case <-s.closed:
		return 0, net.ErrClosed
	default:
	}
	return s.t.conn.WriteToUDPAddrPort(b, s.remote())
}

func (c netConn) Close() error                     { c.s.closeNetConn(); return nil }
func (c netConn) LocalAddr() net.Addr              { return c.s.t.conn.LocalAddr() }
func (c netConn) SetDeadline(time.Time) error      { return nil }
func (c netConn) SetReadDeadline(time.Time) error  { return nil }
func (c netConn) SetWriteDeadline(time.Time) error { return nil }
