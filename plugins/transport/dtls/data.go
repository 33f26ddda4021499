package dtls

// The data path.
//
// Send (WriteBatch, any number of goroutines):
//  1. a datagram larger than MaxPayload is refused (counted), never split;
//  2. the destination's session is looked up, or created in the client
//     role, which starts its handshake goroutine;
//  3. before the handshake is done the datagram is copied into the
//     session's queue (at most the "queue" option; beyond that it is
//     dropped and counted); the session's goroutine flushes the queue
//     once the handshake is done;
//  4. afterwards pion encrypts it into one record and writes it to the
//     socket before WriteBatch moves on, so the caller's buffer is free
//     on return.
//
// Receive (see receive.go for routing):
//  1. the receive loop hands raw datagrams to their session's pion conn;
//  2. each session goroutine reads decrypted datagrams from pion into
//     pooled buffers and queues them on t.rx (it blocks while t.rx is full,
//     which backs up into its own input queue, which then drops);
//  3. ReadBatch waits for one datagram, then takes whatever else is ready,
//     up to len(pkts), copying each into the caller's buffer.

import (
	"fmt"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func (t *dtlsTransport) listening() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return transport.ErrClosed
	case t.conn == nil:
		return errNotListening
	}
	return nil
}

func (t *dtlsTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	if err := t.listening(); err != nil {
		return 0, err
	}
	return t.rx.Read(pkts, t.done)
}

func (t *dtlsTransport) WriteBatch(pkts []transport.Packet) error {
	if err := t.listening(); err != nil {
		return err
	}
	var failed int
	var firstErr error
	fail := func(err error) {
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := range pkts {
		p := &pkts[i]
		if p.N > MaxPayload {
			t.stats.oversize.Add(1)
			fail(fmt.Errorf("datagram of %d bytes exceeds %d", p.N, MaxPayload))
			continue
		}
		addr := unmap(p.Addr)
		if !addr.IsValid() || addr.Port() == 0 || addr.Addr().IsUnspecified() {
			fail(fmt.Errorf("invalid destination %v", p.Addr))
			continue
		}
		s, err := t.sessionFor(addr)
		if err != nil {
			return err // closed
		}
		s.send(p.Buf[:p.N])
	}
	if failed > 0 {
		return fmt.Errorf("dtls: %d of %d datagrams not sent: %w", failed, len(pkts), firstErr)
	}
	return nil
}

// sessionFor returns the session for addr, starting a handshake as client
// if there is none.
func (t *dtlsTransport) sessionFor(addr netip.AddrPort) (*session, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrClosed
	}
	if s := t.sessions[addr]; s != nil {
		return s, nil
	}
	s := t.newSession(addr, true)
	t.sessions[addr] = s
	s.start()
	return s, nil
}

// send writes b on the session, or queues a copy until it is up. Losses
// are counted, not reported: delivery is best effort as with UDP.
func (s *session) send(b []byte) {
	s.mu.Lock()
	if m := s.movedTo; m != nil {
		s.mu.Unlock()
		m.send(b)
		return
	}
	if c := s.conn; c != nil {
		s.mu.Unlock()
		if _, err := c.Write(b); err != nil {
			s.t.stats.sendDrops.Add(1)
		}
		return
	}
	defer s.mu.Unlock()
	if s.dead || len(s.queue) >= s.t.opts.queue {
		s.t.stats.sendDrops.Add(1)
		return
	}
	s.queue = append(s.queue, append([]byte(nil), b...))
}
