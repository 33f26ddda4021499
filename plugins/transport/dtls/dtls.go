package dtls

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/plugins/transport/internal/rxqueue"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Name is the transport's registered name.
const Name = "dtls"

// Overhead is what DTLS 1.2 adds to every datagram with
// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: a 13-byte record header, the
// 8-byte explicit nonce and the 16-byte GCM tag.
const Overhead = 13 + 8 + 16

// MaxPayload is the largest datagram that fits a 1500-byte path as one
// IPv6 UDP datagram (1452 bytes of UDP payload) after Overhead. Larger
// datagrams are refused rather than fragmented.
const MaxPayload = 1452 - Overhead

var (
	_ transport.Factory          = New
	_ transport.CredentialSetter = (*dtlsTransport)(nil)
	_ transport.PeerVerifier     = (*dtlsTransport)(nil)
)

// Stats are the transport's counters since New.
type Stats struct {
	Handshakes        uint64 // sessions that completed a handshake
	HandshakeFailures uint64 // handshakes that failed or timed out
	Rejected          uint64 // peers whose endorsement did not verify (or named another identity)
	Migrations        uint64 // sessions moved to a new peer address (NAT rebinding)
	SendDrops         uint64 // datagrams dropped on the send side: queue full, handshake failed, session gone
	InputDrops        uint64 // received records dropped: unknown sender, full queue, or too many pending handshakes
	Oversize          uint64 // datagrams refused by WriteBatch or ReadBatch for size
}

type counters struct {
	handshakes, handshakeFailures, rejected, migrations atomic.Uint64
	sendDrops, inputDrops, oversize                     atomic.Uint64
}

// options are the parsed plugin options.
type options struct {
	queue            int           // datagrams held per peer while its handshake runs
	maxHandshakes    int           // concurrent handshakes we answer as server
	handshakeTimeout time.Duration // a handshake not done by then fails
	sndbuf, rcvbuf   int
}

// New returns an unbound DTLS transport configured by options; it is a
// transport.Factory. Unknown option keys are rejected.
func New(opts map[string]string) (transport.Transport, error) {
	o, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &dtlsTransport{
		opts:     o,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		sessions: make(map[netip.AddrPort]*session),
		expect:   make(map[netip.AddrPort]ed25519.PublicKey),
	}
	t.rx = &rxqueue.Queue{C: make(chan rxqueue.Datagram, 4*transport.BatchSize*16), Pool: &rxPool, Oversize: &t.stats.oversize}
	return t, nil
}

func parseOptions(m map[string]string) (options, error) {
	o := options{queue: 1024, maxHandshakes: 256, handshakeTimeout: 10 * time.Second,
		sndbuf: 4 << 20, rcvbuf: 4 << 20}
	timeoutMS := int(o.handshakeTimeout / time.Millisecond)
	known := map[string]struct {
		dst      *int
		min, max int
	}{
		"queue":                {&o.queue, 1, 1 << 16},
		"max_handshakes":       {&o.maxHandshakes, 1, 1 << 16},
		"handshake_timeout_ms": {&timeoutMS, 100, 600_000},
		"sndbuf":               {&o.sndbuf, 1, 1 << 30},
		"rcvbuf":               {&o.rcvbuf, 1, 1 << 30},
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad key first every time
	for _, k := range keys {
		opt, ok := known[k]
		if !ok {
			return options{}, fmt.Errorf("dtls: unknown option %q (known: handshake_timeout_ms, max_handshakes, queue, rcvbuf, sndbuf)", k)
		}
		v, err := strconv.Atoi(strings.TrimSpace(m[k]))
		if err != nil || v < opt.min || v > opt.max {
			return options{}, fmt.Errorf("dtls: option %s = %q: want an integer in %d..%d", k, m[k], opt.min, opt.max)
		}
		*opt.dst = v
	}
	o.handshakeTimeout = time.Duration(timeoutMS) * time.Millisecond
	return o, nil
}

var rxPool = sync.Pool{New: func() any { b := make([]byte, MaxPayload); return &b }}

type dtlsTransport struct {
	opts   options
	ctx    context.Context // cancelled by Close: ends every handshake
	cancel context.CancelFunc
	done   chan struct{} // closed by Close: unblocks ReadBatch
	rx     *rxqueue.Queue
	stats  counters
	wg     sync.WaitGroup // the receive loop and every session goroutine

	cert atomic.Pointer[identityCert] // what we present; set by SetCredentials or Listen

	mu         sync.Mutex // guards everything below
	closed     bool
	conn       *net.UDPConn
	sessions   map[netip.AddrPort]*session // by current peer address and old addresses after a migration
	expect     map[netip.AddrPort]ed25519.PublicKey
	handshakes int // sessions in the server role whose handshake is running
}

func (t *dtlsTransport) Name() string { return Name }

var errNotListening = errors.New("dtls: Listen has not been called")

// SetCredentials makes c the identity presented in handshakes that start
// from now on.
func (t *dtlsTransport) SetCredentials(c transport.Credentials) error {
	ic, err := newIdentityCert(c)
	if err != nil {
		return err
	}
	t.cert.Store(ic)
	return nil
}

// SetPeer makes handshakes with addr require identityKey; nil forgets it.
// An established session with another identity at addr is closed.
func (t *dtlsTransport) SetPeer(addr netip.AddrPort, identityKey ed25519.PublicKey) error {
	addr = unmap(addr)
	if identityKey != nil && len(identityKey) != ed25519.PublicKeySize {
		return fmt.Errorf("dtls: SetPeer %v: identity key of %d bytes; want %d", addr, len(identityKey), ed25519.PublicKeySize)
	}
	t.mu.Lock()
	var stale *session
	if identityKey == nil {
		delete(t.expect, addr)
	} else {
		t.expect[addr] = append(ed25519.PublicKey(nil), identityKey...)
		if s := t.sessions[addr]; s != nil {
			if id := s.identity(); id != nil && !id.Equal(identityKey) {
				stale = s
			}
		}
	}
	t.mu.Unlock()
	if stale != nil {
		stale.close()
	}
	return nil
}

// PeerIdentity returns the identity key the peer at addr proved in its
// handshake, if a session with it is up.
func (t *dtlsTransport) PeerIdentity(addr netip.AddrPort) (ed25519.PublicKey, bool) {
	t.mu.Lock()
	s := t.sessions[unmap(addr)]
	t.mu.Unlock()
	if s == nil {
		return nil, false
	}
	id := s.identity()
	return id, id != nil
}

// Stats returns the transport's counters.
func (t *dtlsTransport) Stats() Stats {
	c := &t.stats
	return Stats{
		Handshakes: c.handshakes.Load(), HandshakeFailures: c.handshakeFailures.Load(),
		Rejected: c.rejected.Load(), Migrations: c.migrations.Load(), SendDrops: c.sendDrops.Load(),
		InputDrops: c.inputDrops.Load(), Oversize: c.oversize.Load(),
	}
}

func (t *dtlsTransport) Listen(addr netip.AddrPort) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return netip.AddrPort{}, transport.ErrClosed
	case t.conn != nil:
		return netip.AddrPort{}, errors.New("dtls: Listen called twice")
	case !addr.IsValid():
		return netip.AddrPort{}, fmt.Errorf("dtls: invalid listen address %v", addr)
	}
	if t.cert.Load() == nil {
		// No credentials from the core: make a throwaway identity that
		// endorses itself, so the transport works stand-alone and in tests.
		ic, err := ephemeralCert()
		if err != nil {
			return netip.AddrPort{}, err
		}
		t.cert.CompareAndSwap(nil, ic)
	}
	addr = unmap(addr)
	network := "udp6"
	switch {
	case addr.Addr().Is4():
		network = "udp4"
	case addr.Addr().IsUnspecified():
		network = "udp" // dual-stack wildcard, as in the udp transport
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dtls: listen on %v: %w", addr, err)
	}
	_ = conn.SetReadBuffer(t.opts.rcvbuf) // best effort, capped by the kernel
	_ = conn.SetWriteBuffer(t.opts.sndbuf)
	t.conn = conn
	t.wg.Add(1)
	go t.receive(conn)
	return unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort()), nil
}

// Close ends every session (sending close_notify where one is up), closes
// the socket, unblocks ReadBatch and waits for the transport's goroutines.
func (t *dtlsTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conn := t.conn
	var all []*session
	seen := make(map[*session]bool)
	for _, s := range t.sessions {
		if !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
		if s.next != nil && !seen[s.next] {
			seen[s.next] = true
			all = append(all, s.next)
		}
	}
	t.mu.Unlock()

	t.cancel()
	for _, s := range all {
		s.close()
	}
	var err error
	if conn != nil {
		err = conn.Close()
	}
	close(t.done)
	t.wg.Wait()
	// Return the buffers of datagrams nobody will read.
	t.rx.Drain()
	return err
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// ephemeralCert makes a fresh identity key, endorses a fresh cert key with
// it and forgets the identity key.
func ephemeralCert() (*identityCert, error) {
	idPub, idKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dtls: generate identity: %w", err)
	}
	certPub, certKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dtls: generate certificate key: %w", err)
	}
	return newIdentityCert(transport.Credentials{
		CertKey: certKey, IdentityKey: idPub, Endorsement: transport.Endorse(idKey, certPub),
	})
}
